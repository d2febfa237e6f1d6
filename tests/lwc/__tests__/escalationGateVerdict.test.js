import { createElement } from 'lwc';
import EscalationGateVerdict from 'c/escalationGateVerdict';
import { getRecord, updateRecord } from 'lightning/uiRecordApi';
import precheckCase from '@salesforce/apex/EscalationGate.precheckCase';
import { all, one, texts, settle, IMG, SCRIPT, expectNoInjectedElements, allText } from './dom';

jest.mock(
    '@salesforce/apex/EscalationGate.precheckCase',
    () => ({ default: jest.fn() }),
    { virtual: true }
);

const CASE_ID = '500000000000001AAA';

// The Case as getRecord returns it, with these field values.
function caseRecord(values) {
    const fields = {};
    Object.entries(values).forEach(([name, value]) => {
        fields[name] = { value, displayValue: null };
    });
    return { apiName: 'Case', id: CASE_ID, fields };
}

async function mount(values) {
    const element = createElement('c-escalation-gate-verdict', { is: EscalationGateVerdict });
    element.recordId = CASE_ID;
    document.body.appendChild(element);
    getRecord.emit(caseRecord(values));
    await settle();
    return element;
}

const ANSWER = {
    outcome: 'bad',
    reasons: ['kb_resolvable'],
    handoff: [],
    articles: [
        {
            id: 'kA0000000001001AAA',
            title: 'Calendar sync stops with error E1234 after a password change',
            url: 'https://acme.my.salesforce.com/kA0000000001001AAA',
            passage: 'Sign in again in the calendar app.',
            confidence: 0.93
        }
    ],
    threshold: 0.85,
    review_bound: 0.6,
    ticket: CASE_ID,
    note: 'escalation-gate verdict: BAD escalation (kb_resolvable)'
};

afterEach(() => {
    while (document.body.firstChild) {
        document.body.removeChild(document.body.firstChild);
    }
    jest.clearAllMocks();
});

describe('c-escalation-gate-verdict', () => {
    it('asks for the connector’s verdict fields', async () => {
        await mount({});
        expect(getRecord.getLastConfig()).toEqual({
            recordId: CASE_ID,
            optionalFields: [
                'Case.Escalation_Quality__c',
                'Case.Escalation_Quality_Reason__c',
                'Case.Escalation_Quality_Detail__c',
                'Case.Escalation_Reviewed_Quality__c',
                'Case.Escalation_Overturn_Reason__c'
            ]
        });
    });

    it('shows a bad verdict with its reasons, evidence and confidence', async () => {
        const element = await mount({
            Escalation_Quality__c: 'Bad',
            Escalation_Quality_Reason__c: 'missing_handoff, kb_resolvable',
            Escalation_Quality_Detail__c: 'missing=environment; kb_article=kA0000000001001AAA; conf=0.93'
        });
        expect(one(element, '[data-id="verdict"]').textContent).toBe('Verdict: BAD escalation');
        expect(texts(element, '[data-id="reasons"] li')).toEqual([
            'Hand-off fields are missing or fail their rules.',
            'A knowledge-base article answers the case.',
            'Hand-off fields failing: environment',
            'Article: kA0000000001001AAA'
        ]);
        expect(one(element, '[data-id="confidence"]').textContent).toBe('Confidence: 0.93');
        expect(texts(element, '[data-id="confirm"]')).toEqual(['Confirm: bad']);
        expect(one(element, '[data-id="overturn"]').textContent).toBe('Overturn to good');
        expect(texts(element, '[data-id="overturn-reason"] option').slice(1)).toEqual([
            'Good: the article does not answer the case',
            'Good: the hand-off was complete'
        ]);
        expect(all(element, '[data-id="check"]')).toEqual([]);
    });

    it('shows a good verdict, which a reviewer may overturn to bad', async () => {
        const element = await mount({
            Escalation_Quality__c: 'Good',
            Escalation_Quality_Reason__c: null,
            Escalation_Quality_Detail__c: 'conf=0.12'
        });
        expect(one(element, '[data-id="verdict"]').textContent).toBe('Verdict: GOOD escalation');
        expect(texts(element, '[data-id="reasons"] li')).toEqual([]);
        expect(one(element, '[data-id="confidence"]').textContent).toBe('Confidence: 0.12');
        expect(texts(element, '[data-id="confirm"]')).toEqual(['Confirm: good']);
        expect(one(element, '[data-id="overturn"]').textContent).toBe('Overturn to bad');
        expect(
            all(element, '[data-id="overturn-reason"] option')
                .slice(1)
                .map((o) => o.value)
        ).toEqual(['kb_resolvable', 'missing_handoff']);
    });

    it('shows a review verdict, which a reviewer decides good or bad', async () => {
        const element = await mount({
            Escalation_Quality__c: 'Review',
            Escalation_Quality_Detail__c: 'conf=0.71'
        });
        expect(one(element, '[data-id="verdict"]').textContent).toBe('Verdict: Left to a reviewer');
        expect(texts(element, '[data-id="confirm"]')).toEqual(['Decide: good', 'Decide: bad']);
        expect(all(element, '[data-id="overturn"]')).toEqual([]);
    });

    it('shows what a reviewer decided', async () => {
        const element = await mount({
            Escalation_Quality__c: 'Bad',
            Escalation_Reviewed_Quality__c: 'Good',
            Escalation_Overturn_Reason__c: 'kb_not_applicable'
        });
        expect(one(element, '[data-id="decided"]').textContent).toBe(
            'A reviewer decided: good (Good: the article does not answer the case)'
        );
    });

    it('Confirm records the decision as the quick action does, with no overturn reason', async () => {
        const element = await mount({ Escalation_Quality__c: 'Bad' });
        one(element, '[data-id="confirm"]').click();
        await settle();
        expect(updateRecord).toHaveBeenCalledTimes(1);
        expect(updateRecord).toHaveBeenCalledWith({
            fields: {
                Id: CASE_ID,
                Escalation_Reviewed_Quality__c: 'Bad',
                Escalation_Overturn_Reason__c: null
            }
        });
        expect(one(element, '[data-id="status"]').textContent).toBe('Recorded: bad.');
    });

    it('a case in review is decided with one click', async () => {
        const element = await mount({ Escalation_Quality__c: 'Review' });
        all(element, '[data-id="confirm"]')[1].click();
        await settle();
        expect(updateRecord).toHaveBeenCalledWith({
            fields: {
                Id: CASE_ID,
                Escalation_Reviewed_Quality__c: 'Bad',
                Escalation_Overturn_Reason__c: null
            }
        });
    });

    it('Overturn needs a reason and records the opposite decision with it', async () => {
        const element = await mount({ Escalation_Quality__c: 'Good' });
        const overturn = one(element, '[data-id="overturn"]');
        expect(overturn.disabled).toBe(true);
        const select = one(element, '[data-id="overturn-reason"]');
        select.value = 'missing_handoff';
        select.dispatchEvent(new CustomEvent('change'));
        await settle();
        expect(overturn.disabled).toBe(false);
        overturn.click();
        await settle();
        expect(updateRecord).toHaveBeenCalledWith({
            fields: {
                Id: CASE_ID,
                Escalation_Reviewed_Quality__c: 'Bad',
                Escalation_Overturn_Reason__c: 'missing_handoff'
            }
        });
    });

    it('says when the decision could not be saved', async () => {
        updateRecord.mockRejectedValueOnce({ body: [{ message: 'insufficient access rights on object id' }] });
        const element = await mount({ Escalation_Quality__c: 'Bad' });
        one(element, '[data-id="confirm"]').click();
        await settle();
        expect(one(element, '[data-id="status"]').textContent).toBe(
            'Not recorded: insufficient access rights on object id'
        );
    });

    it('a Case without a verdict can be checked before escalating', async () => {
        precheckCase.mockResolvedValue(JSON.stringify(ANSWER));
        const element = await mount({ Escalation_Quality__c: null });
        expect(all(element, '[data-id="verdict"]')).toEqual([]);
        expect(all(element, '[data-id="confirm"]')).toEqual([]);
        one(element, '[data-id="check"]').click();
        await settle();
        expect(precheckCase).toHaveBeenCalledWith({ caseId: CASE_ID });
        expect(one(element, '[data-id="check-outcome"]').textContent).toBe(
            'This escalation would be: BAD escalation'
        );
        const link = one(element, '[data-id="check-articles"] a');
        expect(link.textContent).toBe('Calendar sync stops with error E1234 after a password change');
        expect(link.getAttribute('href')).toBe('https://acme.my.salesforce.com/kA0000000001001AAA');
        expect(allText(element)).toContain('“Sign in again in the calendar app.”');
        expect(allText(element)).toContain('(confidence 0.93)');
    });

    it('a judged Case shows the judge’s articles on request', async () => {
        precheckCase.mockResolvedValue(JSON.stringify(ANSWER));
        const element = await mount({ Escalation_Quality__c: 'Bad' });
        expect(all(element, '[data-id="check-articles"]')).toEqual([]);
        one(element, '[data-id="evidence"]').click();
        await settle();
        expect(precheckCase).toHaveBeenCalledWith({ caseId: CASE_ID });
        expect(texts(element, '[data-id="check-articles"] a')).toEqual([
            'Calendar sync stops with error E1234 after a password change'
        ]);
    });

    it('says why the check failed', async () => {
        precheckCase.mockRejectedValue({
            body: { message: 'escalation-gate answered 429 (too many checks: try again in a minute).' }
        });
        const element = await mount({});
        one(element, '[data-id="check"]').click();
        await settle();
        expect(one(element, '[data-id="status"]').textContent).toBe(
            'The check failed: escalation-gate answered 429 (too many checks: try again in a minute).'
        );
    });

    it('renders markup in the Case’s fields and in the answer as text', async () => {
        precheckCase.mockResolvedValue(
            JSON.stringify({
                outcome: 'bad',
                reasons: ['missing_handoff'],
                handoff: [{ field: 'environment', rule: 'present', found: IMG, message: `found ${IMG}` }],
                articles: [
                    { title: IMG, url: 'javascript:alert(1)', passage: SCRIPT },
                    { title: SCRIPT, url: 'https://kb.example/a', passage: IMG }
                ]
            })
        );
        const element = await mount({
            Escalation_Quality__c: 'Bad',
            Escalation_Quality_Reason__c: IMG,
            Escalation_Quality_Detail__c: `kb_article=${SCRIPT}`
        });
        one(element, '[data-id="evidence"]').click();
        await settle();
        expectNoInjectedElements(element);
        expect(texts(element, '[data-id="reasons"] li')).toEqual([IMG, `Article: ${SCRIPT}`]);
        expect(texts(element, '[data-id="check-problems"] li')).toEqual([`environment: found ${IMG}`]);
        expect(texts(element, '[data-id="check-articles"] a')).toEqual([SCRIPT]);
        expect(texts(element, '[data-id="check-articles"] span').filter((t) => t === IMG)).toEqual([IMG]);
        expect(allText(element)).toContain(`“${SCRIPT}”`);
    });
});
