// The tokenizer page: the retry button says the size it will use; the try-it box shows each token as a chip.
(() => {  // the button says the size the field holds
  const input = document.getElementById("retry-vocab"), button = document.getElementById("retry-button");
  if (!input || !button) return;  // only failed versions offer a retry, and only to operators
  const label = () => { const n = Number(input.value);
    button.textContent = input.value !== "" && Number.isInteger(n) ? `Retry with ${n.toLocaleString("en")} pieces` : "Retry"; };
  input.addEventListener("input", label);
  label();
})();
(() => {
  const form = document.getElementById("encode-form");
  if (!form) return;
  const visible = (text) => text.replaceAll(" ", "·").replaceAll("\t", "→").replaceAll("\n", "↵");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const summary = document.getElementById("encode-summary");
    const result = document.getElementById("encode-result");
    const response = await fetch(form.dataset.url, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value},
      body: JSON.stringify({text: document.getElementById("encode-text").value}),
    });
    // A refusal from outside the view (a proxy, a server limit) may not be JSON: still say what happened.
    const data = await response.json().catch(() => ({error: `The server refused the text (HTTP ${response.status}).`}));
    result.replaceChildren();
    if (!response.ok) { summary.textContent = data.error; summary.className = "bad small"; return; }
    for (const token of data.tokens) {
      const chip = document.createElement("span");
      chip.className = "chip" + (token.special ? " special" : "") + (token.byte ? " byte" : "");
      chip.textContent = token.special || token.byte ? token.piece : visible(token.text);
      const id = document.createElement("sub");
      id.textContent = token.id;
      chip.appendChild(id);
      chip.title = `id ${token.id} · piece ${token.piece}`;
      result.appendChild(chip);
    }
    const ratio = data.chars_per_token ? data.chars_per_token.toFixed(2) : "—";
    summary.className = "muted small";
    summary.textContent = `${data.count} tokens for ${data.chars} characters (${ratio} chars/token) · ` +
      (data.round_trip ? "decodes back exactly" : "does NOT decode back exactly");
  });
})();
