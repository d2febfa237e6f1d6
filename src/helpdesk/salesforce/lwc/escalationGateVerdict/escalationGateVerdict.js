// escalation-gate on the Case record page: the verdict the service wrote into the connector's
// verdict fields, its reasons, evidence and confidence, and the reviewer's decision, written to
// the same two fields the quick action "Review escalation" sets. On a Case without a verdict,
// the check before escalating.
import { LightningElement, api, wire } from 'lwc';
import { getRecord, updateRecord } from 'lightning/uiRecordApi';
import precheckCase from '@salesforce/apex/EscalationGate.precheckCase';
import CONFIG from 'c/escalationGateConfig';
import { OUTCOME, reasonWords, parseDetail, errorText } from 'c/escalationGateText';

const F = CONFIG.fields;
const FIELDS = [F.verdict, F.reason, F.detail, F.reviewed, F.overturn].map((name) => 'Case.' + name);

// `good`, `bad` or `review` for a picklist value of the connector's.
function outcomeOf(value) {
    return ['good', 'bad', 'review'].find((o) => value && CONFIG.values[o] === value) || null;
}

export default class EscalationGateVerdict extends LightningElement {
    @api recordId;
    record;
    answer;
    error;
    status;
    busy = false;
    reason = '';

    @wire(getRecord, { recordId: '$recordId', optionalFields: FIELDS })
    wiredCase({ data, error }) {
        this.record = data;
        this.error = error ? errorText(error) : undefined;
    }

    value(name) {
        const field = this.record && this.record.fields[name];
        return field ? field.value : null;
    }

    get loaded() {
        return !!this.record;
    }

    get outcome() {
        return outcomeOf(this.value(F.verdict));
    }

    get judged() {
        return this.outcome !== null;
    }

    get title() {
        return 'Verdict: ' + OUTCOME[this.outcome];
    }

    get titleClass() {
        return 'slds-text-heading_small outcome-' + this.outcome;
    }

    get detail() {
        return parseDetail(this.value(F.detail));
    }

    // The reasons and the evidence the verdict fields record, in words.
    get reasons() {
        const lines = reasonWords(this.value(F.reason));
        const d = this.detail;
        if (d.missing.length) {
            lines.push('Hand-off fields failing: ' + d.missing.join(', '));
        }
        d.articles.forEach((a) => lines.push('Article: ' + a));
        return lines.map((text, i) => ({ key: 'r' + i, text }));
    }

    get confidence() {
        const c = this.detail.confidence;
        return c ? 'Confidence: ' + c : '';
    }

    get decided() {
        const reviewed = outcomeOf(this.value(F.reviewed));
        if (!reviewed) {
            return '';
        }
        const why = this.value(F.overturn);
        const label = (CONFIG.overturnReasons.find((r) => r.value === why) || {}).label;
        return 'A reviewer decided: ' + reviewed + (label ? ' (' + label + ')' : '');
    }

    // The decisions that keep the judge's outcome: confirm it, or decide a case in review.
    get confirmations() {
        const o = this.outcome;
        const choices = o === 'review' ? ['good', 'bad'] : [o];
        return choices.map((c) => ({
            key: c,
            value: c,
            label: (o === 'review' ? 'Decide: ' : 'Confirm: ') + c
        }));
    }

    // Good turns bad or bad good, with the reason the judge was wrong.
    get overturnTo() {
        return { good: 'bad', bad: 'good' }[this.outcome] || null;
    }

    get overturnLabel() {
        return 'Overturn to ' + this.overturnTo;
    }

    get overturnReasons() {
        return CONFIG.overturnReasons.filter((r) => r.to === this.overturnTo);
    }

    get cannotOverturn() {
        return this.busy || !this.reason;
    }

    handleReason(event) {
        this.reason = event.target.value;
    }

    handleConfirm(event) {
        this.decide(event.target.dataset.value, null);
    }

    handleOverturn() {
        this.decide(this.overturnTo, this.reason);
    }

    // What "Review escalation" sets: the decision, and the overturn reason (empty unless the
    // decision goes against the judge).
    async decide(outcome, reason) {
        this.busy = true;
        this.status = undefined;
        const fields = { Id: this.recordId, [F.reviewed]: CONFIG.values[outcome], [F.overturn]: reason };
        try {
            await updateRecord({ fields });
            this.status = 'Recorded: ' + outcome + '.';
        } catch (e) {
            this.status = 'Not recorded: ' + errorText(e);
        } finally {
            this.busy = false;
        }
    }

    // The check before escalating on this Case as it is saved: the judge's reasons and articles.
    async handleCheck() {
        this.busy = true;
        this.status = undefined;
        try {
            this.answer = JSON.parse(await precheckCase({ caseId: this.recordId }));
        } catch (e) {
            this.status = 'The check failed: ' + errorText(e);
        } finally {
            this.busy = false;
        }
    }
}
