// The connector acme-sf's names for escalation-gate's components, written by `escalation-gate install salesforce`.
export default {
  "connector": "acme-sf",
  "fields": {
    "detail": "Escalation_Quality_Detail__c",
    "overturn": "Escalation_Overturn_Reason__c",
    "precheck": "Escalation_Precheck__c",
    "reason": "Escalation_Quality_Reason__c",
    "reviewed": "Escalation_Reviewed_Quality__c",
    "verdict": "Escalation_Quality__c"
  },
  "handoff": [
    {
      "field": "Steps_To_Reproduce__c",
      "label": "Steps to reproduce",
      "name": "steps_to_reproduce"
    },
    {
      "field": "Environment__c",
      "label": "Environment",
      "name": "environment"
    },
    {
      "field": "Severity__c",
      "label": "Severity",
      "name": "severity"
    }
  ],
  "overturnReasons": [
    {
      "label": "Good: the article does not answer the case",
      "to": "good",
      "value": "kb_not_applicable"
    },
    {
      "label": "Good: the hand-off was complete",
      "to": "good",
      "value": "handoff_complete"
    },
    {
      "label": "Bad: an article answers the case",
      "to": "bad",
      "value": "kb_resolvable"
    },
    {
      "label": "Bad: the hand-off is incomplete",
      "to": "bad",
      "value": "missing_handoff"
    }
  ],
  "values": {
    "bad": "Bad",
    "good": "Good",
    "review": "Review"
  }
};
