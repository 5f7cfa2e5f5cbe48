"""The "call me" flow with the Python client openapi-generator generates
(scripts/generated-clients.sh); its models validate every answer."""
import os
import uuid

from callverify_og import (
    ApiClient,
    Configuration,
    MethodsApi,
    NewAuthenticatorApp,
    NewMethod,
    PhoneMethod,
    AuthenticatorAppMethod,
    Purpose,
    StartRequest,
    Status,
    VerificationsApi,
)

config = Configuration(host=os.environ["CALLVERIFY_BASE"], access_token=os.environ["CALLVERIFY_KEY"])
TENANT = "contoso"
user = f"ogpy-{uuid.uuid4().hex[:8]}"
FINAL = {Status.APPROVED, Status.FAILED, Status.EXPIRED, Status.CANCELED, Status.FRAUD_REPORTED}

with ApiClient(config) as api:
    verifications, methods = VerificationsApi(api), MethodsApi(api)
    request = StartRequest(purpose=Purpose.REGISTRATION, phone_number="+1 425 555 0178")
    key = str(uuid.uuid4())
    started = verifications.start_verification(TENANT, user, request, idempotency_key=key)
    again = verifications.start_verification(TENANT, user, request, idempotency_key=key)
    assert again.id == started.id, (started, again)
    view = started
    while view.status not in FINAL:
        view = verifications.get_verification(TENANT, view.id, wait=30)
    assert view.status == Status.APPROVED, view

    document = methods.list_methods(TENANT, user)
    phone = document.methods[0].actual_instance
    assert isinstance(phone, PhoneMethod), phone
    assert phone.phone_number == "+14255550178", phone

    new = NewMethod(NewAuthenticatorApp(kind="authenticator_app", display_name="Phone"))
    app = methods.add_method(TENANT, user, new, idempotency_key=str(uuid.uuid4()))
    assert isinstance(app.actual_instance, AuthenticatorAppMethod), app

    ringing = verifications.start_verification(
        TENANT, f"{user}-cancel", StartRequest(purpose=Purpose.REGISTRATION, phone_number="+14255550301")
    )
    canceled = verifications.cancel_verification(TENANT, ringing.id)
    assert canceled.status == Status.CANCELED, canceled
print("openapi-generator python: call-me flow ok")
