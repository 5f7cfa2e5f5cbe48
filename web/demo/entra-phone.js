// The virtual phone for "Sign in with Entra (simulated)": follows the handset the demo handed
// out for the sign-in's call (GET /phone/entra?since=V, long-poll) and sends its keys.
(function () {
  "use strict";
  const over = ["completed", "busy", "no-answer", "failed", "canceled"];
  let version = "";
  async function follow() {
    for (;;) {
      const response = await fetch("/phone/entra?since=" + encodeURIComponent(version));
      if (!response.ok) { await new Promise((r) => setTimeout(r, 1000)); continue; }
      const view = await response.json();
      version = view.version;
      const ringing = ["queued", "ringing"].includes(view.status);
      document.getElementById("state").textContent =
        ringing ? "Incoming call…" : over.includes(view.status) ? "Call ended" : view.status ? "In call" : "No call";
      const spoken = view.speaking || view.said[view.said.length - 1];
      document.getElementById("spoken").textContent = spoken ? spoken.text : "";
    }
  }
  for (const key of document.querySelectorAll("[data-key]")) {
    key.addEventListener("click", () => fetch("/phone/entra/keys", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: key.dataset.key }),
    }));
  }
  document.getElementById("hang-up").addEventListener("click", () => fetch("/phone/entra/hang-up", { method: "POST" }));
  follow();
})();
