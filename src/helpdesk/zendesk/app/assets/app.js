// escalation-gate's ticket sidebar app (Zendesk Apps Framework v2). Everything shown is set as
// text (textContent), never as HTML: a ticket's subject and fields, and the service's answers,
// may hold markup. The connector's settings come from config.js, written by
// `escalation-gate install zendesk-app`.
(function () {
  'use strict';
  var config = window.EG_CONFIG;
  var client = window.ZAFClient.init();
  var byId = function (id) { return document.getElementById(id); };

  function item(list, text, cls) {
    var li = document.createElement('li');
    li.textContent = text;
    if (cls) { li.className = cls; }
    list.appendChild(li);
    return li;
  }

  function clear(node) {
    while (node.firstChild) { node.removeChild(node.firstChild); }
  }

  function status(text) {
    var s = byId('status');
    s.textContent = text;
    s.hidden = !text;
  }

  var OUTCOME = {
    good: 'GOOD escalation',
    bad: 'BAD escalation',
    review: 'Left to a reviewer'
  };

  // The verdict the ticket's tags record, if any.
  function judged(tags) {
    if (tags.indexOf(config.tags.bad) >= 0) { return 'bad'; }
    if (tags.indexOf(config.tags.good) >= 0) { return 'good'; }
    if (tags.indexOf(config.tags.review) >= 0) { return 'review'; }
    return null;
  }

  // What the reason tags say, in words.
  function reasons(tags) {
    var p = config.tags.prefix;
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

  // Records a decision as the reviewer macro of the same title does: its tags, and its internal
  // note in the comment box; the reviewer submits the ticket.
  function decide(d) {
    return client.invoke('ticket.tags.remove', d.remove)
      .then(function () { return client.invoke('ticket.tags.add', d.add); })
      .then(function () { return client.set('comment.type', 'internalNote'); })
      .then(function () { return client.invoke('comment.appendText', d.note); })
      .then(function () { status('Recorded: ' + d.title + '. Submit the ticket to keep it.'); })
      .catch(function () { status('Could not record the decision.'); });
  }

  function showVerdict(outcome, tags) {
    byId('verdict').hidden = false;
    var title = byId('verdict-title');
    title.textContent = 'Verdict: ' + OUTCOME[outcome];
    title.className = outcome;
    var list = byId('verdict-reasons');
    clear(list);
    reasons(tags).forEach(function (r) { item(list, r); });
    var box = byId('decisions');
    clear(box);
    config.decisions.forEach(function (d) {
      var b = document.createElement('button');
      b.type = 'button';
      b.textContent = d.title;
      b.addEventListener('click', function () { decide(d); });
      box.appendChild(b);
    });
  }

  // The draft the precheck judges: the ticket's current (unsaved) values.
  function draft(data) {
    var fields = {};
    Object.keys(config.fields).forEach(function (id) {
      var v = data['ticket.customField:custom_field_' + id];
      if (v !== undefined && v !== null && v !== '') { fields[config.fields[id]] = String(v); }
    });
    return {
      subject: data['ticket.subject'] || '',
      description: data['ticket.description'] || '',
      fields: fields
    };
  }

  function safeLink(url) {
    return /^https?:\/\//i.test(url || '') ? url : null;
  }

  function showCheck(answer) {
    byId('check-result').hidden = false;
    var title = byId('check-title');
    var outcome = answer.outcome in OUTCOME ? answer.outcome : 'review';
    title.textContent = 'This escalation would be: ' + OUTCOME[outcome];
    title.className = outcome;
    var problems = byId('check-problems');
    clear(problems);
    (answer.problems || []).forEach(function (p) {
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

  function check(settings, data) {
    status('Checking…');
    return client.request({
      url: settings.service_url.replace(/\/+$/, '') + '/precheck/' + encodeURIComponent(config.connector),
      type: 'POST',
      contentType: 'application/json',
      headers: { Authorization: 'Bearer {{setting.precheck_secret}}' },
      secure: true,
      data: JSON.stringify(draft(data))
    }).then(function (answer) {
      status('');
      showCheck(typeof answer === 'string' ? JSON.parse(answer) : answer);
    }).catch(function (e) {
      status('The check could not run' + (e && e.status ? ' (HTTP ' + e.status + ')' : '') + '.');
    });
  }

  var paths = ['ticket.subject', 'ticket.description', 'ticket.tags'].concat(
    Object.keys(config.fields).map(function (id) { return 'ticket.customField:custom_field_' + id; })
  );

  Promise.all([client.metadata(), client.get(paths)]).then(function (got) {
    var settings = got[0].settings || {};
    var data = got[1];
    var tags = data['ticket.tags'] || [];
    var outcome = judged(tags);
    status('');
    if (outcome) {
      showVerdict(outcome, tags);
    } else {
      byId('check').hidden = false;
      byId('run-check').addEventListener('click', function () {
        client.get(paths).then(function (now) { check(settings, now); });
      });
    }
    client.invoke('resize', { width: '100%', height: '320px' });
  }).catch(function () {
    status('The ticket could not be read.');
  });
}());
