import { createElement } from 'lwc';
import EscalationGatePrecheck from 'c/escalationGatePrecheck';
import { createRecord } from 'lightning/uiRecordApi';
import precheck from '@salesforce/apex/EscalationGate.precheck';
import abandoned from '@salesforce/apex/EscalationGate.abandoned';
import { all, one, texts, settle, IMG, SCRIPT, expectNoInjectedElements, allText } from './dom';

jest.mock('@salesforce/apex/EscalationGate.precheck', () => ({ default: jest.fn() }), {
    virtual: true
});
jest.mock(
    '@salesforce/apex/EscalationGate.abandoned',
    () => ({ default: jest.fn(() => Promise.resolve()) }),
    { virtual: true }
);

const ARTICLE = {
    title: 'PDF export of large invoices stops at 80%',
    url: 'https://help.acme.example/s/article/pdf-export',
    passage: 'Split an invoice of more than 500 lines before exporting it.'
};
const BAD_ARTICLE = { outcome: 'bad', reasons: ['kb_resolvable'], handoff: [], articles: [ARTICLE] };
const BAD_FIELDS = {
    outcome: 'bad',
    reasons: ['missing_handoff'],
    handoff: [
        { field: 'environment', rule: 'present', found: '', message: 'must be filled in; found empty.' },
        {
            field: 'steps_to_reproduce',
            rule: 'min_length',
            found: 'run it',
            message: 'must be at least 40 characters; found 6.'
        }
    ],
    articles: []
};
const GOOD = { outcome: 'good', reasons: [], handoff: [], articles: [] };

function mount() {
    const element = createElement('c-escalation-gate-precheck', { is: EscalationGatePrecheck });
    document.body.appendChild(element);
    return element;
}

// Types `value` into the input of `field` (a Case field API name).
function type(element, field, value) {
    const input = one(element, `[data-field="${field}"]`);
    input.value = value;
    input.dispatchEvent(new CustomEvent('input'));
}

// Fills the form and lets the debounced check run.
async function fill(element, values) {
    Object.entries(values).forEach(([field, value]) => type(element, field, value));
    jest.runOnlyPendingTimers();
    await settle();
}

function sentDraft(call = 0) {
    return JSON.parse(precheck.mock.calls[call][0].draftJson);
}

beforeEach(() => {
    jest.useFakeTimers();
});

afterEach(() => {
    while (document.body.firstChild) {
        document.body.removeChild(document.body.firstChild);
    }
    jest.clearAllMocks();
    jest.useRealTimers();
});

describe('c-escalation-gate-precheck', () => {
    it('has the connector’s hand-off fields', () => {
        const element = mount();
        expect(all(element, 'input, textarea').map((i) => i.dataset.field)).toEqual([
            'Subject',
            'Description',
            'Steps_To_Reproduce__c',
            'Environment__c',
            'Severity__c'
        ]);
        expect(texts(element, 'label')).toEqual([
            'Subject',
            'Description',
            'Steps to reproduce',
            'Environment',
            'Severity'
        ]);
    });

    it('checks as the partner types, once typing pauses', async () => {
        precheck.mockResolvedValue(JSON.stringify(BAD_ARTICLE));
        const element = mount();
        type(element, 'Subject', 'PDF export');
        type(element, 'Subject', 'PDF export stops at 80%');
        expect(precheck).not.toHaveBeenCalled();
        jest.advanceTimersByTime(799);
        expect(precheck).not.toHaveBeenCalled();
        jest.advanceTimersByTime(1);
        await settle();
        expect(precheck).toHaveBeenCalledTimes(1);
        expect(sentDraft()).toEqual({
            subject: 'PDF export stops at 80%',
            description: '',
            fields: { steps_to_reproduce: '', environment: '', severity: '' }
        });
    });

    it('shows a bad answer with the article that answers the case', async () => {
        precheck.mockResolvedValue(JSON.stringify(BAD_ARTICLE));
        const element = mount();
        await fill(element, {
            Subject: 'PDF export stops at 80%',
            Description: 'Exporting a 600-line invoice stops at 80%.'
        });
        expect(one(element, '[data-id="check-outcome"]').textContent).toBe(
            'This escalation would be: BAD escalation'
        );
        const link = one(element, '[data-id="check-articles"] a');
        expect(link.textContent).toBe(ARTICLE.title);
        expect(link.getAttribute('href')).toBe(ARTICLE.url);
        expect(allText(element)).toContain(`“${ARTICLE.passage}”`);
        expect(all(element, '[data-id="check-problems"]')).toEqual([]);
    });

    it('shows a bad answer with the hand-off fields that fail their rules', async () => {
        precheck.mockResolvedValue(JSON.stringify(BAD_FIELDS));
        const element = mount();
        await fill(element, { Subject: 'Reports are slow', Steps_To_Reproduce__c: 'run it' });
        expect(sentDraft().fields).toEqual({ steps_to_reproduce: 'run it', environment: '', severity: '' });
        expect(texts(element, '[data-id="check-problems"] li')).toEqual([
            'environment: must be filled in; found empty.',
            'steps_to_reproduce: must be at least 40 characters; found 6.'
        ]);
        expect(all(element, '[data-id="check-articles"]')).toEqual([]);
    });

    it('shows a good answer', async () => {
        precheck.mockResolvedValue(JSON.stringify(GOOD));
        const element = mount();
        one(element, '[data-id="check"]').click();
        await settle();
        expect(precheck).not.toHaveBeenCalled();
        type(element, 'Description', 'Exporting a 600-line invoice stops at 80%.');
        await settle();
        one(element, '[data-id="check"]').click();
        await settle();
        expect(precheck).toHaveBeenCalledTimes(1);
        expect(one(element, '[data-id="check-outcome"]').textContent).toBe(
            'This escalation would be: GOOD escalation'
        );
        jest.runOnlyPendingTimers();
        await settle();
        expect(precheck).toHaveBeenCalledTimes(1);
    });

    it('submits the Case with what the check said', async () => {
        precheck.mockResolvedValue(JSON.stringify(BAD_FIELDS));
        createRecord.mockResolvedValue({ id: '500000000000009AAA' });
        const element = mount();
        await fill(element, {
            Subject: 'Reports are slow',
            Description: 'Customer says reports are slow.',
            Steps_To_Reproduce__c: 'run it'
        });
        one(element, '[data-id="submit"]').click();
        await settle();
        expect(precheck).toHaveBeenCalledTimes(1);
        expect(createRecord).toHaveBeenCalledWith({
            apiName: 'Case',
            fields: {
                Subject: 'Reports are slow',
                Description: 'Customer says reports are slow.',
                Steps_To_Reproduce__c: 'run it',
                Escalation_Precheck__c: 'bad'
            }
        });
        expect(one(element, '[data-id="status"]').textContent).toBe('Case created.');
    });

    it('a draft changed since the last check is checked again before it is sent', async () => {
        precheck
            .mockResolvedValueOnce(JSON.stringify(BAD_FIELDS))
            .mockResolvedValueOnce(JSON.stringify(GOOD));
        createRecord.mockResolvedValue({ id: '500000000000009AAA' });
        const element = mount();
        await fill(element, { Subject: 'Reports are slow' });
        type(element, 'Environment__c', 'Ledgerly cloud, EU region');
        one(element, '[data-id="submit"]').click();
        await settle();
        expect(precheck).toHaveBeenCalledTimes(2);
        expect(sentDraft(1).fields.environment).toBe('Ledgerly cloud, EU region');
        expect(createRecord.mock.calls[0][0].fields.Escalation_Precheck__c).toBe('good');
    });

    it('says why the check failed and sends nothing unchecked', async () => {
        precheck.mockRejectedValue({ body: { message: 'escalation-gate answered 503 (busy: try again shortly).' } });
        const element = mount();
        await fill(element, { Subject: 'Reports are slow' });
        expect(one(element, '[data-id="status"]').textContent).toBe(
            'The check failed: escalation-gate answered 503 (busy: try again shortly).'
        );
        one(element, '[data-id="submit"]').click();
        await settle();
        expect(createRecord).not.toHaveBeenCalled();
    });

    it('reports once a draft left after the check showed an article', async () => {
        precheck.mockResolvedValue(JSON.stringify(BAD_ARTICLE));
        const element = mount();
        await fill(element, { Subject: 'PDF export stops at 80%' });
        expect(abandoned).not.toHaveBeenCalled();
        window.dispatchEvent(new Event('pagehide'));
        expect(abandoned).toHaveBeenCalledWith({ articles: 1 });
        document.body.removeChild(element);
        expect(abandoned).toHaveBeenCalledTimes(1);
    });

    it('reports a draft left by navigating away, but not one sent or shown no article', async () => {
        precheck.mockResolvedValue(JSON.stringify(BAD_ARTICLE));
        createRecord.mockResolvedValue({ id: '500000000000009AAA' });
        const left = mount();
        await fill(left, { Subject: 'PDF export stops at 80%' });
        document.body.removeChild(left);
        expect(abandoned).toHaveBeenCalledTimes(1);

        const sent = mount();
        await fill(sent, { Subject: 'PDF export stops at 80%' });
        one(sent, '[data-id="submit"]').click();
        await settle();
        expect(createRecord).toHaveBeenCalledTimes(1);
        document.body.removeChild(sent);
        window.dispatchEvent(new Event('pagehide'));

        precheck.mockResolvedValue(JSON.stringify(BAD_FIELDS));
        const noArticle = mount();
        await fill(noArticle, { Subject: 'Reports are slow' });
        document.body.removeChild(noArticle);
        expect(abandoned).toHaveBeenCalledTimes(1);
    });

    it('renders markup in what the partner typed and in the answer as text', async () => {
        precheck.mockResolvedValue(
            JSON.stringify({
                outcome: 'bad',
                reasons: ['missing_handoff', 'kb_resolvable'],
                handoff: [{ field: 'environment', rule: 'present', found: IMG, message: `found ${IMG}` }],
                articles: [{ title: SCRIPT, url: 'javascript:alert(1)', passage: IMG }]
            })
        );
        const element = mount();
        await fill(element, { Subject: IMG, Environment__c: SCRIPT });
        expect(sentDraft()).toEqual({
            subject: IMG,
            description: '',
            fields: { steps_to_reproduce: '', environment: SCRIPT, severity: '' }
        });
        expectNoInjectedElements(element);
        expect(all(element, '[data-id="check-articles"] a')).toEqual([]);
        expect(texts(element, '[data-id="check-articles"] span')).toContain(SCRIPT);
        expect(texts(element, '[data-id="check-problems"] li')).toEqual([`environment: found ${IMG}`]);
        expect(allText(element)).toContain(`“${IMG}”`);
    });
});
