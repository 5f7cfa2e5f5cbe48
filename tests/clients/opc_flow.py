"""The "call me" flow with the client openapi-python-client generates (scripts/generated-clients.sh).

Every answer is parsed into its typed model (raise_on_unexpected_status: an answer the document
does not describe fails the run).
"""
import os
import uuid

from callverify_opc import AuthenticatedClient
from callverify_opc.api.methods import add_method, list_methods
from callverify_opc.api.verifications import (
    cancel_verification,
    get_verification,
    start_verification,
)
from callverify_opc.models import (
    AuthenticatorAppMethod,
    MethodsDocument,
    NewAuthenticatorApp,
    NewAuthenticatorAppKind,
    PhoneMethod,
    PhoneType,
    Purpose,
    StartRequest,
    Status,
    VerificationView,
)

client = AuthenticatedClient(
    base_url=os.environ["CALLVERIFY_BASE"],
    token=os.environ["CALLVERIFY_KEY"],
    raise_on_unexpected_status=True,
)
TENANT = "contoso"
user = f"opc-{uuid.uuid4().hex[:8]}"
FINAL = {Status.APPROVED, Status.FAILED, Status.EXPIRED, Status.CANCELED, Status.FRAUD_REPORTED}

# Register a phone: the simulated callee presses # (any number not ending in 00-06).
request = StartRequest(purpose=Purpose.REGISTRATION, phone_number="+1 425 555 0177")
key = str(uuid.uuid4())
started = start_verification.sync(tenant=TENANT, user=user, client=client, body=request, idempotency_key=key)
assert isinstance(started, VerificationView), started
again = start_verification.sync(tenant=TENANT, user=user, client=client, body=request, idempotency_key=key)
assert isinstance(again, VerificationView) and again.id == started.id, again

view = started
while view.status not in FINAL:
    view = get_verification.sync(tenant=TENANT, id=view.id, client=client, wait=30)
    assert isinstance(view, VerificationView), view
assert view.status == Status.APPROVED, view

methods = list_methods.sync(tenant=TENANT, user=user, client=client)
assert isinstance(methods, MethodsDocument), methods
phone = methods.methods[0]
assert isinstance(phone, PhoneMethod), phone
assert phone.phone_type == PhoneType.MOBILE and phone.phone_number == "+14255550177", phone

app = add_method.sync(
    tenant=TENANT,
    user=user,
    client=client,
    body=NewAuthenticatorApp(kind=NewAuthenticatorAppKind.AUTHENTICATOR_APP, display_name="Phone"),
    idempotency_key=str(uuid.uuid4()),
)
assert isinstance(app, AuthenticatorAppMethod), app

# Cancel a call nobody answers (00-06: 01 rings until its timeout).
other = f"{user}-cancel"
ringing = start_verification.sync(
    tenant=TENANT, user=other, client=client,
    body=StartRequest(purpose=Purpose.REGISTRATION, phone_number="+14255550201"),
)
assert isinstance(ringing, VerificationView), ringing
canceled = cancel_verification.sync(tenant=TENANT, id=ringing.id, client=client)
assert isinstance(canceled, VerificationView) and canceled.status == Status.CANCELED, canceled
print("openapi-python-client: call-me flow ok")
