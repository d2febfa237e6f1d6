// escalation-gate's check before escalating on an Experience Cloud page: the partner fills in
// the Case (subject, description and the connector's hand-off fields); the check runs as they
// type and on the button, and its answer stands beside the form. Submitting creates the Case
// with what the last check said in the precheck field, so the verdict's note can say whether
// the partner fixed what the check found. A draft left without a Case after the check showed an
// article (the partner navigates away or closes the page) is reported once as abandoned.
import { LightningElement } from 'lwc';
import { createRecord } from 'lightning/uiRecordApi';
import precheck from '@salesforce/apex/EscalationGate.precheck';
import abandoned from '@salesforce/apex/EscalationGate.abandoned';
import CONFIG from 'c/escalationGateConfig';
import { errorText } from 'c/escalationGateText';

// How long typing pauses before the check runs.
const DEBOUNCE_MS = 800;

export default class EscalationGatePrecheck extends LightningElement {
    subject = '';
    description = '';
    values = {};
    answer;
    checked;
    status;
    busy = false;
    timer;
    // Whether the draft as it stands was sent as a Case, or reported as abandoned.
    sent = false;
    reported = false;
    leaving = () => this.reportAbandoned();

    get handoff() {
        return CONFIG.handoff.map((f) => ({ ...f, value: this.values[f.field] || '' }));
    }

    get empty() {
        return !this.subject.trim() && !this.description.trim();
    }

    get cannotSubmit() {
        return this.busy || this.empty;
    }

    // The draft as the precheck endpoint takes it: hand-off fields by their hand-off names.
    draft() {
        const fields = {};
        CONFIG.handoff.forEach((f) => {
            fields[f.name] = this.values[f.field] || '';
        });
        return JSON.stringify({ subject: this.subject, description: this.description, fields });
    }

    handleInput(event) {
        const field = event.target.dataset.field;
        if (field === 'Subject') {
            this.subject = event.target.value;
        } else if (field === 'Description') {
            this.description = event.target.value;
        } else {
            this.values = { ...this.values, [field]: event.target.value };
        }
        this.sent = false;
        clearTimeout(this.timer);
        // eslint-disable-next-line @lwc/lwc/no-async-operation
        this.timer = setTimeout(() => this.check(), DEBOUNCE_MS);
    }

    connectedCallback() {
        window.addEventListener('pagehide', this.leaving);
    }

    disconnectedCallback() {
        clearTimeout(this.timer);
        window.removeEventListener('pagehide', this.leaving);
        this.reportAbandoned();
    }

    // A draft the check showed an article for, left without a Case: reported once, and a
    // failure to report it is not the partner's concern.
    reportAbandoned() {
        const shown = (this.answer && this.answer.articles && this.answer.articles.length) || 0;
        if (this.sent || this.reported || !shown) {
            return;
        }
        this.reported = true;
        abandoned({ articles: shown }).catch(() => {});
    }

    handleCheck() {
        clearTimeout(this.timer);
        return this.check();
    }

    // Runs the check on the draft as it is; an answer to an older draft is dropped.
    async check() {
        if (this.empty) {
            return;
        }
        const draft = this.draft();
        this.status = undefined;
        try {
            const answer = JSON.parse(await precheck({ draftJson: draft }));
            if (draft === this.draft()) {
                this.answer = answer;
                this.checked = draft;
            }
        } catch (e) {
            this.status = 'The check failed: ' + errorText(e);
        }
    }

    // Creates the Case, checked as it is sent.
    async handleSubmit() {
        clearTimeout(this.timer);
        this.busy = true;
        try {
            if (this.checked !== this.draft()) {
                await this.check();
            }
            if (this.checked !== this.draft()) {
                return;
            }
            const fields = { Subject: this.subject, Description: this.description };
            CONFIG.handoff.forEach((f) => {
                if (this.values[f.field]) {
                    fields[f.field] = this.values[f.field];
                }
            });
            fields[CONFIG.fields.precheck] = this.answer.outcome;
            await createRecord({ apiName: 'Case', fields });
            this.sent = true;
            this.status = 'Case created.';
        } catch (e) {
            this.status = 'The Case was not created: ' + errorText(e);
        } finally {
            this.busy = false;
        }
    }
}
