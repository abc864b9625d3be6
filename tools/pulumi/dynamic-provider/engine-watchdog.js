// Preloaded into the dynamic-provider process (see pulumi-resource-pulumi-nodejs): exits once the
// process that started it (the Pulumi engine) is gone, which shows as a new parent pid (re-parented to
// init or a subreaper). A provider call still running then has no engine to report to anyway.
"use strict";
const enginePid = process.ppid;
const timer = setInterval(() => {
  if (process.ppid !== enginePid) {
    process.exit(1);
  }
}, 1000);
timer.unref();
