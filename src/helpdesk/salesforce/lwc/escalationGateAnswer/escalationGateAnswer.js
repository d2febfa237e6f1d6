// The answer of the check before escalating: the outcome in words, the hand-off fields that fail
// their rules, and the articles that answer the case with title, link and passage.
import { LightningElement, api } from 'lwc';
import { answerView } from 'c/escalationGateText';

export default class EscalationGateAnswer extends LightningElement {
    @api answer;

    get view() {
        return this.answer ? answerView(this.answer) : null;
    }

    get outcomeClass() {
        return 'slds-text-heading_small outcome-' + this.view.outcome;
    }

    get hasProblems() {
        return this.view.problems.length > 0;
    }

    get hasArticles() {
        return this.view.articles.length > 0;
    }
}
