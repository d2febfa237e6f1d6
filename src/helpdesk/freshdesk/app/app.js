// escalation-gate's Freshdesk ticket sidebar (Freshworks apps platform 2.3), drawn by render.js.
// The connector's settings come from config.js, written by `escalation-gate install
// freshdesk-app`; the precheck goes through the `precheck` request template, which adds the
// secure installation parameter `precheck_secret`.
(function () {
  'use strict';
  var config = window.EG_CONFIG;
  var ui = window.EGRender;

  // The draft the precheck judges: the ticket as saved (Freshdesk's sidebar reads no unsaved
  // values).
  function draft(ticket) {
    var custom = ticket.custom_fields || {};
    var fields = {};
    Object.keys(config.fields).forEach(function (cf) {
      var v = custom[cf];
      if (v !== undefined && v !== null && v !== '') { fields[config.fields[cf]] = String(v); }
    });
    return {
      subject: ticket.subject || '',
      description: ticket.description_text || '',
      fields: fields
    };
  }

  window.app.initialized().then(function (client) {
    function check() {
      ui.status('Checking…');
      return client.data.get('ticket').then(function (data) {
        return client.request.invokeTemplate('precheck', { body: JSON.stringify(draft(data.ticket)) });
      }).then(function (answer) {
        ui.status('');
        ui.showCheck(JSON.parse(answer.response));
      }).catch(function (e) {
        ui.status('The check could not run' + (e && e.status ? ' (HTTP ' + e.status + ')' : '') + '.');
      });
    }

    client.data.get('ticket').then(function (data) {
      var tags = data.ticket.tags || [];
      var outcome = ui.judged(tags, config.tags);
      ui.status('');
      if (outcome) {
        ui.showVerdict(outcome, tags, config.tags, [], null);
      } else {
        document.getElementById('check').hidden = false;
        document.getElementById('run-check').addEventListener('click', check);
      }
    }).catch(function () {
      ui.status('The ticket could not be read.');
    });
  });
}());
