// The "call me" flow with openapi-typescript's types through openapi-fetch
// (scripts/generated-clients.sh); type-checked with `strict`, then run.
import { randomUUID } from "node:crypto";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type View = components["schemas"]["VerificationView"];

const client = createClient<paths>({
  baseUrl: process.env.CALLVERIFY_BASE!,
  headers: { Authorization: `Bearer ${process.env.CALLVERIFY_KEY!}` },
});
const tenant = "contoso";
const user = `ots-${Math.random().toString(16).slice(2, 10)}`;
const open: View["status"][] = ["calling", "ringing", "answered"];

function check(ok: boolean, what: unknown): void {
  if (!ok) throw new Error(`unexpected: ${JSON.stringify(what)}`);
}

const start = (path: { tenant: string; user: string }, phone_number: string, key?: string) =>
  client.POST("/v1/tenants/{tenant}/users/{user}/verifications", {
    params: { path, header: key ? { "Idempotency-Key": key } : {} },
    body: { purpose: "registration", phone_number },
  });

const key = randomUUID();
const started = await start({ tenant, user }, "+1 425 555 0180", key);
check(started.response.status === 202 && started.data !== undefined, started.error);
const again = await start({ tenant, user }, "+1 425 555 0180", key);
check(again.data?.id === started.data!.id, again.data);
let view: View = started.data!;
while (open.includes(view.status)) {
  const read = await client.GET("/v1/tenants/{tenant}/verifications/{id}", {
    params: { path: { tenant, id: view.id }, query: { wait: 30 } },
  });
  check(read.data !== undefined, read.error);
  view = read.data!;
}
check(view.status === "approved", view);

const listed = await client.GET("/v1/tenants/{tenant}/users/{user}/methods", {
  params: { path: { tenant, user } },
});
const phone = listed.data?.methods[0];
check(phone?.kind === "phone" && phone.phone_number === "+14255550180", phone);

const app = await client.POST("/v1/tenants/{tenant}/users/{user}/methods", {
  params: { path: { tenant, user }, header: { "Idempotency-Key": randomUUID() } },
  body: { kind: "authenticator_app", display_name: "Phone" },
});
check(app.response.status === 201 && app.data?.kind === "authenticator_app", app.data);

const ringing = await start({ tenant, user: `${user}-cancel` }, "+14255550501");
check(ringing.data !== undefined, ringing.error);
const canceled = await client.POST("/v1/tenants/{tenant}/verifications/{id}/cancel", {
  params: { path: { tenant, id: ringing.data!.id } },
});
check(canceled.data?.status === "canceled", canceled.data);
console.log("openapi-typescript + openapi-fetch: call-me flow ok");
