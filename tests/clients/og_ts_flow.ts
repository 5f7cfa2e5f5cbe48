// The "call me" flow with the TypeScript (fetch) client openapi-generator generates
// (scripts/generated-clients.sh); type-checked with `strict`, then run.
import { randomUUID } from "node:crypto";
import {
  Configuration,
  MethodsApi,
  VerificationsApi,
  Purpose,
  Status,
  type VerificationView,
} from "./client/index.js";

const config = new Configuration({
  basePath: process.env.CALLVERIFY_BASE!,
  accessToken: process.env.CALLVERIFY_KEY!,
});
const verifications = new VerificationsApi(config);
const methods = new MethodsApi(config);
const tenant = "contoso";
const user = `ogts-${Math.random().toString(16).slice(2, 10)}`;
const open: Status[] = [Status.Calling, Status.Ringing, Status.Answered];

function check(ok: boolean, what: unknown): void {
  if (!ok) throw new Error(`unexpected: ${JSON.stringify(what)}`);
}

const request = { purpose: Purpose.Registration, phoneNumber: "+1 425 555 0179" };
const key = randomUUID();
const started = await verifications.startVerification({ tenant, user, startRequest: request, idempotencyKey: key });
const again = await verifications.startVerification({ tenant, user, startRequest: request, idempotencyKey: key });
check(again.id === started.id, again);
let view: VerificationView = started;
while (open.includes(view.status)) {
  view = await verifications.getVerification({ tenant, id: view.id, wait: 30 });
}
check(view.status === Status.Approved, view);

const document = await methods.listMethods({ tenant, user });
const phone = document.methods[0];
check(phone.kind === "phone" && phone.phoneNumber === "+14255550179", phone);

const app = await methods.addMethod({
  tenant,
  user,
  newMethod: { kind: "authenticator_app", displayName: "Phone" },
  idempotencyKey: randomUUID(),
});
check(app.kind === "authenticator_app" && typeof app.id === "string", app);

const ringing = await verifications.startVerification({
  tenant,
  user: `${user}-cancel`,
  startRequest: { purpose: Purpose.Registration, phoneNumber: "+14255550401" },
});
const canceled = await verifications.cancelVerification({ tenant, id: ringing.id });
check(canceled.status === Status.Canceled, canceled);
console.log("openapi-generator typescript-fetch: call-me flow ok");
