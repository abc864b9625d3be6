// Jest's default order (failed first, then slowest first), with the replay suites last: they need
// kube-apiserver, which scripts/test.sh builds in the background meanwhile (~13 min when cold).
//
// `--shard=1/2` and `--shard=2/2` are the two lanes scripts/test.sh runs side by side (each
// --runInBand): the suites are mostly waits on servers and engines, so two at a time fill the two
// cores that one leaves half idle. Lane 1 is the suites on the SSH test hosts and the Docker engine
// (and the fault suites, for balance); lane 2 those on MLflow servers here. Each lane is one process,
// so suites that share a host kind still run one after the other. Other shard counts: jest's own split.
"use strict";
const path = require("path");
const Sequencer = require("@jest/test-sequencer").default;

const REPLAY = `${path.sep}test${path.sep}replay${path.sep}`;
const LANE_ONE = [
  "test/integration/remote/",
  "test/engine/remoteStack.test.ts",
  "test/replay/",
  "test/faults/faults.test.ts",
  "test/faults/killedUp.test.ts",
].map((p) => p.split("/").join(path.sep));

function inLaneOne(testPath) {
  return LANE_ONE.some((p) => testPath.includes(`${path.sep}${p}`));
}

class ReplayLastSequencer extends Sequencer {
  shard(tests, options) {
    if (options.shardCount !== 2) {
      return super.shard(tests, options);
    }
    const laneOne = options.shardIndex === 1;
    return tests.filter((t) => inLaneOne(t.path) === laneOne);
  }

  async sort(tests) {
    const sorted = await super.sort(tests);
    return [
      ...sorted.filter((t) => !t.path.includes(REPLAY)),
      ...sorted.filter((t) => t.path.includes(REPLAY)),
    ];
  }
}

module.exports = ReplayLastSequencer;
module.exports.inLaneOne = inLaneOne;
