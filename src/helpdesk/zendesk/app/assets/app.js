// escalation-gate's Zendesk ticket sidebar (Zendesk Apps Framework v2), drawn by render.js. The
// connector's settings come from config.js, written by `escalation-gate install zendesk-app`.
(function () {
  'use strict';
  var config = window.EG_CONFIG;
  var ui = window.EGRender;
  var client = window.ZAFClient.init();

  // Records a decision as the reviewer macro of the same title does: its tags, and its internal
  // note in the comment box; the reviewer submits the ticket.
  function decide(d) {
    return client.invoke('ticket.tags.remove', d.remove)
      .then(function () { return client.invoke('ticket.tags.add', d.add); })
      .then(function () { return client.set('comment.type', 'internalNote'); })
      .then(function () { return client.invoke('comment.appendText', d.note); })
      .then(function () { ui.status('Recorded: ' + d.title + '. Submit the ticket to keep it.'); })
      .catch(function () { ui.status('Could not record the decision.'); });
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

  // Records on the ticket (saved with it) what the check said, so that the verdict's note and
  // the metrics can tell a problem fixed before sending from one sent anyway; and, once a check
  // listed an article, that the partner was shown one (a ticket solved without escalating after
  // that is a draft abandoned after an article was shown).
  function remember(answer) {
    var tag = function (o) { return config.tags.prefix + 'precheck_' + o; };
    var outcome = answer.outcome;
    if (['good', 'bad', 'review'].indexOf(outcome) < 0) { return Promise.resolve(); }
    var others = ['good', 'bad', 'review'].filter(function (o) { return o !== outcome; }).map(tag);
    var add = [tag(outcome)];
    if ((answer.articles || []).length > 0) { add.push(tag('article')); }
    return client.invoke('ticket.tags.remove', others)
      .then(function () { return client.invoke('ticket.tags.add', add); });
  }

  function check(settings, data) {
    ui.status('Checking…');
    return client.request({
      url: settings.service_url.replace(/\/+$/, '') + '/precheck/' + encodeURIComponent(config.connector),
      type: 'POST',
      contentType: 'application/json',
      headers: { Authorization: 'Bearer {{setting.precheck_secret}}' },
      secure: true,
      data: JSON.stringify(draft(data))
    }).then(function (answer) {
      var shown = typeof answer === 'string' ? JSON.parse(answer) : answer;
      ui.status('');
      ui.showCheck(shown);
      return remember(shown);
    }).catch(function (e) {
      ui.status('The check could not run' + (e && e.status ? ' (HTTP ' + e.status + ')' : '') + '.');
    });
  }

  var paths = ['ticket.subject', 'ticket.description', 'ticket.tags'].concat(
    Object.keys(config.fields).map(function (id) { return 'ticket.customField:custom_field_' + id; })
  );

  Promise.all([client.metadata(), client.get(paths)]).then(function (got) {
    var settings = got[0].settings || {};
    var data = got[1];
    var tags = data['ticket.tags'] || [];
    var outcome = ui.judged(tags, config.tags);
    ui.status('');
    if (outcome) {
      ui.showVerdict(outcome, tags, config.tags, config.decisions, decide);
    } else {
      document.getElementById('check').hidden = false;
      document.getElementById('run-check').addEventListener('click', function () {
        client.get(paths).then(function (now) { check(settings, now); });
      });
    }
    client.invoke('resize', { width: '100%', height: '320px' });
  }).catch(function () {
    ui.status('The ticket could not be read.');
  });
}());
