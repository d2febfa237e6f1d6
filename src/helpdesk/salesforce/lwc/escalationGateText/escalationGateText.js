// What escalation-gate's Salesforce components say, in words: the outcome, the reasons and the
// detail field of a verdict, and the answer of the check before escalating shaped for a
// template. Templates set everything as text; links are only ever http(s).

export const OUTCOME = {
    good: 'GOOD escalation',
    bad: 'BAD escalation',
    review: 'Left to a reviewer'
};

const REASONS = {
    kb_resolvable: 'A knowledge-base article answers the case.',
    missing_handoff: 'Hand-off fields are missing or fail their rules.',
    late: 'Escalated late.',
    kb_gap: 'No article comes close: a knowledge-base gap.'
};

// The reason field's names (`missing_handoff, kb_resolvable, late`), in words.
export function reasonWords(text) {
    return (text || '')
        .split(',')
        .map((r) => r.trim())
        .filter((r) => r)
        .map((r) => REASONS[r] || r);
}

// The detail field (`missing=steps,version; kb_article=kb-1001; conf=0.97`): the failing
// hand-off fields, the articles and the judge's confidence.
export function parseDetail(text) {
    const detail = { missing: [], articles: [], confidence: null };
    (text || '').split(';').forEach((part) => {
        const [key, value = ''] = part.trim().split('=');
        const list = value.split(',').map((v) => v.trim()).filter((v) => v);
        if (key === 'missing') {
            detail.missing = list;
        } else if (key === 'kb_article') {
            detail.articles = list;
        } else if (key === 'conf' && /^\d(\.\d+)?$/.test(value)) {
            detail.confidence = value;
        }
    });
    return detail;
}

export function safeLink(url) {
    return /^https?:\/\//i.test(url || '') ? url : null;
}

// The message of an error from Apex (AuraHandledException) or from the UI API.
export function errorText(error) {
    const body = error && error.body;
    if (body && typeof body.message === 'string') {
        return body.message;
    }
    if (Array.isArray(body) && body.length && body[0].message) {
        return body[0].message;
    }
    return (error && error.message) || 'escalation-gate could not be reached.';
}

// An answer of the check before escalating (the endpoint's JSON), shaped for the template.
export function answerView(answer) {
    const outcome = answer && answer.outcome in OUTCOME ? answer.outcome : 'review';
    return {
        outcome,
        title: 'This escalation would be: ' + OUTCOME[outcome],
        problems: ((answer && answer.handoff) || []).map((p, i) => ({
            key: 'p' + i,
            text: (p.field ? p.field + ': ' : '') + (p.message || '')
        })),
        articles: ((answer && answer.articles) || []).map((a, i) => ({
            key: 'a' + i,
            title: a.title || a.url || '',
            href: safeLink(a.url),
            confidence:
                typeof a.confidence === 'number' ? '(confidence ' + a.confidence.toFixed(2) + ')' : '',
            passage: a.passage ? '“' + a.passage + '”' : ''
        }))
    };
}
