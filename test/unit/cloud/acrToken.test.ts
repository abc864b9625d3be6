import * as http from "http";
import { exchangeAcrRefreshToken } from "../../../components/cloud/acrToken";

// The Entra ID -> ACR token exchange against a real HTTP server on loopback that answers as ACR's
// /oauth2/exchange does (form in, JSON with refresh_token out).

interface Seen {
  method?: string;
  type?: string;
  form: Record<string, string>;
}

async function fakeAcr(
  answers: { status: number; body: string }[],
): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({
        method: req.method,
        type: req.headers["content-type"],
        form: Object.fromEntries(new URLSearchParams(body)),
      });
      const a = answers[Math.min(seen.length - 1, answers.length - 1)];
      res.writeHead(a.status, { "Content-Type": "application/json" }).end(a.body);
    });
  });
  // Ports 33000-33499 are this suite's; take a free one among them.
  for (let port = 33000 + Math.floor(Math.random() * 400); ; port++) {
    const ok = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (ok) {
      return {
        url: `http://127.0.0.1:${port}/oauth2/exchange`,
        seen,
        close: () => new Promise((r) => server.close(() => r())),
      };
    }
  }
}

const args = { loginServer: "myacr.azurecr.io", tenantId: "tenant-1", accessToken: "entra-token" };

test("posts the exchange form and returns the refresh token", async () => {
  const acr = await fakeAcr([{ status: 200, body: '{"refresh_token":"acr-refresh"}' }]);
  try {
    expect(await exchangeAcrRefreshToken({ ...args, url: acr.url })).toBe("acr-refresh");
    expect(acr.seen).toEqual([
      {
        method: "POST",
        type: "application/x-www-form-urlencoded",
        form: {
          grant_type: "access_token",
          service: "myacr.azurecr.io",
          tenant: "tenant-1",
          access_token: "entra-token",
        },
      },
    ]);
  } finally {
    await acr.close();
  }
});

test("retries throttling and 5xx, then succeeds", async () => {
  const acr = await fakeAcr([
    { status: 429, body: "{}" },
    { status: 503, body: "{}" },
    { status: 200, body: '{"refresh_token":"third-time"}' },
  ]);
  try {
    expect(await exchangeAcrRefreshToken({ ...args, url: acr.url })).toBe("third-time");
    expect(acr.seen).toHaveLength(3);
  } finally {
    await acr.close();
  }
});

test("a refusal names the missing role, at once, without the token", async () => {
  const acr = await fakeAcr([{ status: 401, body: '{"errors":[{"code":"UNAUTHORIZED"}]}' }]);
  try {
    const err = await exchangeAcrRefreshToken({ ...args, url: acr.url }).catch((e: Error) => e);
    expect(err).toEqual(
      new Error(
        "ScorerImage: myacr.azurecr.io refused the Entra ID token exchange (401); the identity running pulumi needs AcrPush on the registry",
      ),
    );
    expect(acr.seen).toHaveLength(1);
  } finally {
    await acr.close();
  }
});

test("gives up after the attempts with the last status; an answer without a token is an error", async () => {
  const acr = await fakeAcr([{ status: 500, body: "{}" }]);
  try {
    await expect(exchangeAcrRefreshToken({ ...args, url: acr.url, attempts: 2 })).rejects.toEqual(
      new Error(
        "ScorerImage: exchanging an Entra ID token at myacr.azurecr.io failed after 2 attempts (last: 500)",
      ),
    );
  } finally {
    await acr.close();
  }
  const empty = await fakeAcr([{ status: 200, body: "{}" }]);
  try {
    await expect(exchangeAcrRefreshToken({ ...args, url: empty.url })).rejects.toEqual(
      new Error(
        "ScorerImage: myacr.azurecr.io answered the token exchange without a refresh_token",
      ),
    );
  } finally {
    await empty.close();
  }
});

test("a server that never answers hits the per-request deadline", async () => {
  const hang = http.createServer(() => undefined);
  await new Promise<void>((r) => hang.listen(33499, "127.0.0.1", r));
  try {
    await expect(
      exchangeAcrRefreshToken({
        ...args,
        url: "http://127.0.0.1:33499/oauth2/exchange",
        timeoutMs: 200,
        attempts: 1,
      }),
    ).rejects.toEqual(
      new Error(
        "ScorerImage: exchanging an Entra ID token at myacr.azurecr.io failed after 1 attempts (last: timed out)",
      ),
    );
  } finally {
    hang.closeAllConnections();
    await new Promise((r) => hang.close(r));
  }
});
