// The example project's deploy configuration: the sample app, deployed into .deploy/hello by default.
import { defineConfig } from './tasks/config/define-config.js';

export default defineConfig({
  application: 'hello',
  subdirectory: 'examples/hello',
  keepReleases: 5,
  dependencies: { type: 'node' },
  shared: { dirs: ['logs'], files: [] },
  port: 8080,
  environments: {
    local: {
      hosts: [{ name: 'local', local: true, deployTo: '.deploy/hello' }],
    },
  },
});
