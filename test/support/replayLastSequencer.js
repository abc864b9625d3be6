// Jest's default order (failed first, then slowest first), with the replay suites last: they need
// kube-apiserver, which scripts/test.sh builds in the background meanwhile (~13 min when cold).
"use strict";
const path = require("path");
const Sequencer = require("@jest/test-sequencer").default;

const REPLAY = `${path.sep}test${path.sep}replay${path.sep}`;

class ReplayLastSequencer extends Sequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    return [
      ...sorted.filter((t) => !t.path.includes(REPLAY)),
      ...sorted.filter((t) => t.path.includes(REPLAY)),
    ];
  }
}

module.exports = ReplayLastSequencer;
