import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { resolveConnection } from "../../providers/mlflow/connection";
import {
  credentialsFileText,
  serverTrackingEnv,
  writeCredentialsHome,
} from "../../providers/mlflow/credentialsHome";
import { tempDir, venvPython } from "../support/env";

const URI = "http://127.0.0.1:5000";

describe("MLflow's credentials file for the servers started here", () => {
  it("doubles % for configparser and refuses what cannot round-trip, naming the setting", () => {
    expect(credentialsFileText("admin", "p%ss;#x")).toBe(
      "[mlflow]\nmlflow_tracking_username = admin\nmlflow_tracking_password = p%%ss;#x\n",
    );
    expect(() => credentialsFileText("admin", "two\nlines")).toThrow(
      "the MLflow password cannot go into MLflow's credentials file: it has a line break or leading/trailing whitespace",
    );
    expect(() => credentialsFileText(" admin", "pw")).toThrow("the MLflow username cannot go");
  });

  it("is read back by MLflow's own reader as written (0700 home, 0600 file)", () => {
    const home = path.join(tempDir("credhome"), "home");
    writeCredentialsHome(home, "admin", "S3cret-%(x)s;#!");
    expect(fs.statSync(home).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(home, ".mlflow")).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(home, ".mlflow", "credentials")).mode & 0o777).toBe(0o600);
    const read = execFileSync(
      venvPython,
      [
        "-c",
        "from mlflow.utils.credentials import read_mlflow_creds as r; c = r(); print(c.username); print(c.password)",
      ],
      {
        env: { PATH: process.env.PATH ?? "", HOME: home },
        encoding: "utf8",
      },
    );
    expect(read).toBe("admin\nS3cret-%(x)s;#!\n");
  });

  it("gives a basic-auth server HOME and no credential variable, a token server its variable", () => {
    const home = path.join(tempDir("credhome"), "h");
    const basic = resolveConnection(
      { trackingUri: URI, auth: { username: "admin", password: "pw" } },
      {},
    );
    expect(serverTrackingEnv(basic, home)).toEqual({ MLFLOW_TRACKING_URI: URI, HOME: home });
    expect(fs.readFileSync(path.join(home, ".mlflow", "credentials"), "utf8")).toContain(
      "mlflow_tracking_password = pw",
    );
    const token = resolveConnection({ trackingUri: URI, auth: { token: "t0k" } }, {});
    const other = path.join(tempDir("credhome"), "none");
    expect(serverTrackingEnv(token, other)).toEqual({
      MLFLOW_TRACKING_URI: URI,
      MLFLOW_TRACKING_TOKEN: "t0k",
    });
    expect(serverTrackingEnv(resolveConnection({ trackingUri: URI }, {}), other)).toEqual({
      MLFLOW_TRACKING_URI: URI,
    });
    expect(fs.existsSync(other)).toBe(false);
  });
});
