// The External MFA pages' only script (served from our own origin; the CSP allows nothing
// else). On the post-back page: submit the form to Entra at once. On the calling page: follow
// the call by long-poll (GET …/status?known=S), then continue (approved, fraud, expired) or
// offer "Call again" after a failed call.
(function () {
  "use strict";
  var postBack = document.getElementById("post-back");
  if (postBack) {
    postBack.submit();
    return;
  }
  var main = document.getElementById("signin");
  if (!main) return;
  var texts = JSON.parse(main.getAttribute("data-texts"));
  var statusLine = document.getElementById("status");
  var finish = document.getElementById("finish");
  var retry = document.getElementById("retry");
  finish.hidden = true;
  var known = main.getAttribute("data-status");

  function show(view) {
    statusLine.textContent = texts["status_" + view.status] || texts.status_failed;
  }

  function settle(view) {
    show(view);
    if (view.status === "failed" || view.status === "canceled") {
      // The person chooses: call again (if allowed) or cancel.
      retry.hidden = !view.can_retry;
      if (!view.can_retry) finish.submit();
      return;
    }
    finish.submit(); // approved, fraud_reported, expired, done
  }

  function poll() {
    var request = new XMLHttpRequest();
    request.open("GET", main.getAttribute("data-status-url") + "?known=" + encodeURIComponent(known));
    request.onload = function () {
      if (request.status !== 200) {
        setTimeout(poll, 2000);
        return;
      }
      var view = JSON.parse(request.responseText);
      known = view.status;
      if (view.terminal) {
        settle(view);
      } else {
        show(view);
        poll();
      }
    };
    request.onerror = function () { setTimeout(poll, 2000); };
    request.send();
  }
  poll();
})();
