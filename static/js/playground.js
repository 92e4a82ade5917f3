// The playground: stream the refinement loop's events (newline-delimited JSON) into the plan and attempt cards.
(() => {
  const form = document.getElementById("playground-form");
  if (!form) return;
  // A hint under the model choice when its checkpoint is barely trained (few steps or a high validation loss).
  const hints = JSON.parse(document.getElementById("training-hints").textContent);
  const hint = document.getElementById("training-hint");
  const showHint = () => { const text = hints[form.elements.model.value] || ""; hint.textContent = text; hint.hidden = !text; };
  form.elements.model.addEventListener("change", showHint);
  showHint();
  const stop = document.getElementById("stop-generation");
  let controller = null;
  stop.addEventListener("click", () => { if (controller) controller.abort(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = document.getElementById("generate"); button.disabled = true;
    controller = new AbortController(); stop.hidden = false;
    const plan = document.getElementById("plan"), iterations = document.getElementById("iterations");
    const final = document.getElementById("final"), verdict = document.getElementById("final-verdict");
    plan.textContent = ""; iterations.innerHTML = ""; final.hidden = true;
    let current = null;
    const newAttempt = () => {
      const card = document.createElement("div"); card.className = "card iteration";
      card.innerHTML = `<h2>Attempt ${iterations.children.length + 1}</h2><pre class="code"></pre><p class="verdict muted">generating…</p>`;
      iterations.appendChild(card); return card;
    };
    const handle = (e) => {
      if (e.type === "token" && e.stage === "plan") plan.textContent += e.text;
      else if (e.type === "token" && e.stage === "code") { current = current || newAttempt(); current.querySelector(".code").textContent += e.text; }
      else if (e.type === "iteration") {
        current = current || newAttempt();
        const v = current.querySelector(".verdict");
        v.className = "verdict " + (e.syntax_ok ? "ok" : "bad");
        v.textContent = (e.syntax_ok ? "parses" : "does not parse: " + e.errors.slice(0, 3).join("; ")) + (e.decision ? ` · model said ${e.decision}` : "");
        current = null;
      } else if (e.type === "done") {
        final.hidden = false; verdict.className = e.syntax_ok ? "ok" : "bad";
        verdict.textContent = `${e.iterations} iteration(s), stopped: ${e.stopped}; final code ${e.syntax_ok ? "parses" : "does not parse"}.`;
      } else if (e.type === "error") { final.hidden = false; verdict.className = "bad"; verdict.textContent = e.message; }
    };
    try {
      const response = await fetch(form.action, {method: "POST", body: new FormData(form), signal: controller.signal});
      if (!response.ok) {
        let message = `The server refused (${response.status}).`;
        try {
          const errors = (await response.json()).errors || {};
          message = "Please correct: " + Object.entries(errors).map(([field, list]) => `${field.replace(/_/g, " ")}: ${list.join(" ")}`).join("; ");
        } catch (e) { /* not JSON: keep the status line */ }
        handle({type: "error", message});
        return;
      }
      const reader = response.body.getReader(), decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) { const line = buffer.slice(0, nl); buffer = buffer.slice(nl + 1); if (line) handle(JSON.parse(line)); }
      }
    } catch (error) {
      if (error.name !== "AbortError") throw error;
      // Stopping closes the stream; the server stops generating when it can no longer write.
      final.hidden = false; verdict.className = "muted"; verdict.id = "final-verdict";
      verdict.textContent = "Stopped: the text above is what the model had written so far.";
      if (current) current.querySelector(".verdict").textContent = "stopped";
    } finally { button.disabled = false; stop.hidden = true; controller = null; }
  });
})();
