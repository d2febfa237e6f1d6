// escalation-gate's Freshdesk ticket sidebar (Freshworks apps platform 2.3), drawn by render.js.
// The connector's settings come from config.js, written by `escalation-gate install
// freshdesk-app`; the precheck goes through the `precheck` request template, which adds the
// secure installation parameter `precheck_secret`. What the check said goes into the ticket's
// `precheck_field` through the Interface API (saved with the ticket).
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

  // The value the precheck field records: the outcome, and `+article` once a check listed an
  // article (on this ticket, as saved, or in this sidebar).
  function recorded(outcome, ticket, answer) {
    var saved = String((ticket.custom_fields || {})[config.precheck_field] || '');
    var shown = /\+article$/.test(saved) || (answer.articles || []).length > 0;
    return outcome + (shown ? '+article' : '');
  }

  window.app.initialized().then(function (client) {
    var ticket = {};

    // Sets the ticket's precheck field to what the check said; the agent saves it with the
    // ticket.
    function remember(answer) {
      if (!config.precheck_field || ['good', 'bad', 'review'].indexOf(answer.outcome) < 0) {
        return Promise.resolve();
      }
      var value = recorded(answer.outcome, ticket, answer);
      ticket.custom_fields = ticket.custom_fields || {};
      ticket.custom_fields[config.precheck_field] = value;
      return client.interface.trigger('setValue', { id: config.precheck_field, value: value });
    }

    function check() {
      ui.status('Checking…');
      return client.data.get('ticket').then(function (data) {
        ticket = data.ticket;
        return client.request.invokeTemplate('precheck', { body: JSON.stringify(draft(data.ticket)) });
      }).then(function (answer) {
        var shown = JSON.parse(answer.response);
        ui.status('');
        ui.showCheck(shown);
        return remember(shown);
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
