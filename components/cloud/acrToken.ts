/**
 * Docker login to Azure Container Registry with a Microsoft Entra ID token instead of the registry's
 * admin user (which Azure Policy often forbids): the exchange `az acr login --expose-token` does.
 * An Entra access token (for Azure Resource Manager) is exchanged at `https://<registry>/oauth2/exchange`
 * for an ACR refresh token, which docker accepts as the password of the fixed user below.
 */

/** The user name ACR expects with a refresh token. */
export const ACR_TOKEN_USER = "00000000-0000-0000-0000-000000000000";

export interface AcrExchangeArgs {
  /** The registry's login server, e.g. myacr.azurecr.io (the token's `service`). */
  loginServer: string;
  /** Entra tenant of the access token. */
  tenantId: string;
  /** Entra access token of the identity that pushes (needs AcrPush on the registry). */
  accessToken: string;
  /** Exchange endpoint; default https://<loginServer>/oauth2/exchange (tests point it at loopback). */
  url?: string;
  /** Per-request deadline; default 30 s. */
  timeoutMs?: number;
  /** Attempts on throttling (429), 5xx or network errors; default 3. */
  attempts?: number;
}

/** POSTs the exchange form and returns the ACR refresh token. Errors never carry a token. */
export async function exchangeAcrRefreshToken(a: AcrExchangeArgs): Promise<string> {
  const url = a.url ?? `https://${a.loginServer}/oauth2/exchange`;
  const body = new URLSearchParams({
    grant_type: "access_token",
    service: a.loginServer,
    tenant: a.tenantId,
    access_token: a.accessToken,
  }).toString();
  const attempts = a.attempts ?? 3;
  let last = "";
  for (let i = 1; i <= attempts; i++) {
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body,
        signal: AbortSignal.timeout(a.timeoutMs ?? 30_000),
      });
      const text = await res.text();
      if (res.ok) {
        const token = (JSON.parse(text) as { refresh_token?: unknown }).refresh_token;
        if (typeof token !== "string" || token === "") {
          throw new Error(
            `ScorerImage: ${a.loginServer} answered the token exchange without a refresh_token`,
          );
        }
        return token;
      }
      last = `${res.status}`;
      if (res.status !== 429 && res.status < 500) {
        throw new Error(
          `ScorerImage: ${a.loginServer} refused the Entra ID token exchange (${res.status}); the identity running pulumi needs AcrPush on the registry`,
        );
      }
    } catch (err) {
      if ((err as Error).message.startsWith("ScorerImage:")) {
        throw err;
      }
      last = (err as Error).name === "TimeoutError" ? "timed out" : (err as Error).message;
    }
    if (i < attempts) {
      await new Promise((r) => setTimeout(r, 500 * 2 ** (i - 1)));
    }
  }
  throw new Error(
    `ScorerImage: exchanging an Entra ID token at ${a.loginServer} failed after ${attempts} attempts (last: ${last})`,
  );
}
