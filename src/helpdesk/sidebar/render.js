// What escalation-gate's helpdesk sidebars show, the same in every helpdesk: a verdict and its
// reasons read from the ticket's tags, and the answer of the check before escalating. Everything
// is set as text (textContent), never as HTML: a ticket's fields and the service's answers may
// hold markup. Each helpdesk's app wires it to its own client (Zendesk's ZAF, Freshworks').
window.EGRender = (function () {
  'use strict';
  var byId = function (id) { return document.getElementById(id); };

  var OUTCOME = {
    good: 'GOOD escalation',
    bad: 'BAD escalation',
    review: 'Left to a reviewer'
  };

  function item(list, text, cls) {
    var li = document.createElement('li');
    li.textContent = text;
    if (cls) { li.className = cls; }
    list.appendChild(li);
  }

  function clear(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
  }

  function status(text) {
    var s = byId('status');
    s.textContent = text;
    s.hidden = !text;
  }

  // The verdict the ticket's tags record (`t`: the connector's tags), if any.
  function judged(tags, t) {
    if (tags.indexOf(t.bad) >= 0) { return 'bad'; }
    if (tags.indexOf(t.good) >= 0) { return 'good'; }
    if (tags.indexOf(t.review) >= 0) { return 'review'; }
    return null;
  }

  // What the reason tags (prefix `p`) say, in words.
  function reasons(tags, p) {
    var out = [];
    tags.forEach(function (t) {
      if (t.indexOf(p) !== 0) { return; }
      var rest = t.slice(p.length);
      if (rest === 'kb_resolvable') { out.push('A knowledge-base article answers the case.'); }
      else if (rest === 'missing_handoff') { out.push('Hand-off fields are missing or fail their rules.'); }
      else if (rest.indexOf('missing_') === 0) { out.push('Hand-off field failing: ' + rest.slice(8)); }
      else if (rest.indexOf('kb_article_') === 0) { out.push('Article: ' + rest.slice(11)); }
      else if (rest.indexOf('kb_conf_') === 0) { out.push('Confidence: 0.' + rest.slice(8)); }
      else if (rest === 'late') { out.push('Escalated late.'); }
      else if (rest === 'kb_gap') { out.push('No article comes close: a knowledge-base gap.'); }
      else if (rest === 'reviewed_good') { out.push('A reviewer decided: good.'); }
      else if (rest === 'reviewed_bad') { out.push('A reviewer decided: bad.'); }
      else if (rest.indexOf('overturn_') === 0) { out.push('Overturned: ' + rest.slice(9)); }
    });
    return out;
  }

  // The verdict, its reasons, and a button per reviewer decision (`decide` records one).
  function showVerdict(outcome, tags, t, decisions, decide) {
    byId('verdict').hidden = false;
    var title = byId('verdict-title');
    title.textContent = 'Verdict: ' + OUTCOME[outcome];
    title.className = outcome;
    var list = byId('verdict-reasons');
    clear(list);
    reasons(tags, t.prefix).forEach(function (r) { item(list, r); });
    var box = byId('decisions');
    clear(box);
    byId('review').hidden = decisions.length === 0;
    decisions.forEach(function (d) {
      var b = document.createElement('button');
      b.type = 'button';
      b.textContent = d.title;
      b.addEventListener('click', function () { decide(d); });
      box.appendChild(b);
    });
  }

  function safeLink(url) {
    return /^https?:\/\//i.test(url || '') ? url : null;
  }

  // The answer of the check before escalating.
  function showCheck(answer) {
    byId('check-result').hidden = false;
    var title = byId('check-title');
    var outcome = answer.outcome in OUTCOME ? answer.outcome : 'review';
    title.textContent = 'This escalation would be: ' + OUTCOME[outcome];
    title.className = outcome;
    var problems = byId('check-problems');
    clear(problems);
    (answer.handoff || []).forEach(function (p) {
      item(problems, (p.field ? p.field + ': ' : '') + (p.message || ''), 'bad');
    });
    var articles = byId('check-articles');
    clear(articles);
    (answer.articles || []).forEach(function (a) {
      var li = document.createElement('li');
      var href = safeLink(a.url);
      var name = document.createElement(href ? 'a' : 'span');
      name.textContent = a.title || '';
      if (href) { name.href = href; name.target = '_blank'; name.rel = 'noopener'; }
      li.appendChild(name);
      if (typeof a.confidence === 'number') {
        li.appendChild(document.createTextNode(' (confidence ' + a.confidence.toFixed(2) + ')'));
      }
      if (a.passage) {
        var q = document.createElement('div');
        q.className = 'passage';
        q.textContent = '“' + a.passage + '”';
        li.appendChild(q);
      }
      articles.appendChild(li);
    });
  }

  return { status: status, judged: judged, showVerdict: showVerdict, showCheck: showCheck };
}());
