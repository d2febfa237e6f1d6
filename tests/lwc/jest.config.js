// The components' sources live in src/helpdesk/salesforce/lwc (sfdx-project.json points there);
// the connector's config module, which `install salesforce` generates, is the one generated for
// the test connector (tests/api/install_salesforce.rs checks they are equal).
const { jestConfig } = require('@salesforce/sfdx-lwc-jest/config');

module.exports = {
    ...jestConfig,
    moduleNameMapper: {
        '^c/escalationGateConfig$': '<rootDir>/escalationGateConfig.js'
    },
    testMatch: ['<rootDir>/__tests__/**/*.test.js']
};
