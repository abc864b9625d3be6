/**
 * Imported first by a `*.netns.test.ts` file, before the suite it runs again: that test file's SSH
 * test host is the netns one (test/support/netnsHost.ts), whatever MODEL_SERVING_TEST_HOST says, so
 * the fallback for machines without a Docker engine runs in every `npm test`. Jest gives each test file
 * its own copy of process.env and its own module registry, so no other file is affected.
 */
process.env.MODEL_SERVING_TEST_HOST = "netns";
