// Reads the `endpoints` stack output (JSON on stdin) and runs each endpoint's generated curl command,
// printing the prediction: the same command a user would paste.
const { execFileSync } = require("child_process");

let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const endpoints = JSON.parse(input || "{}");
  const names = Object.keys(endpoints);
  if (names.length === 0) {
    console.error("no endpoints in the stack outputs");
    process.exit(1);
  }
  for (const name of names) {
    const e = endpoints[name];
    const out = execFileSync("bash", ["-c", e.curl], { encoding: "utf8", timeout: 60_000 });
    console.log(`${name} (${e.target}, ${e.modelUri}) at ${e.url}`);
    console.log(`prediction: ${out.trim()}`);
  }
});
