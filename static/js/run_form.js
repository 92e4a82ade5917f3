// The new-run form: highlight changed settings, ask the server for the parameter count and a preset's defaults.
(() => {
  const form = document.getElementById("run-form");
  if (!form) return;
  const settings = [...form.querySelectorAll(".setting")];
  const valueOf = (el) => el.type === "checkbox" ? String(el.checked) : el.value;
  const sameValue = (el, value) => el.type === "checkbox" ? String(el.checked) === String(value)
    : (el.type === "number" ? Number(el.value) === Number(value) : el.value === String(value));
  const isChanged = (el) => !sameValue(el, el.dataset.default);
  const mark = () => settings.forEach((el) => el.closest(".form-row").classList.toggle("changed", isChanged(el)));
  let pending = 0;
  async function preview(presetChanged) {
    const params = new URLSearchParams();
    for (const key of ["family", "preset", "dataset"]) params.set(key, form.elements[key].value);
    const changed = settings.filter(isChanged);
    changed.forEach((el) => params.set(el.name, valueOf(el)));
    const ticket = ++pending;
    const response = await fetch(form.getAttribute("data-preview") + "?" + params);
    const data = await response.json();
    if (ticket !== pending) return;
    if (presetChanged && data.defaults) {
      // What the user typed while the request was out is theirs too: never overwrite it.
      const edited = new Set([...changed, ...settings.filter(isChanged)]);
      for (const el of settings) {
        const value = data.defaults[el.name];
        if (value === undefined) continue;
        if (!edited.has(el)) { if (el.type === "checkbox") el.checked = !!value; else el.value = value; }
        el.dataset.default = String(value);
        const help = el.closest(".form-row").querySelector(".help.preset");
        if (help) help.textContent = "preset: " + (el.type === "checkbox" ? (value ? "True" : "False") : value);
      }
    }
    mark();
    const count = document.getElementById("param-count"), note = document.getElementById("param-note");
    count.textContent = data.parameter_count ? data.parameter_count.toLocaleString("en") : "—";
    if (data.parameter_count && !data.error) {
      note.textContent = `preset ${data.preset_parameter_count.toLocaleString("en")} at vocabulary ${data.vocab_size.toLocaleString("en")}`
        + ` · ${data.tokens_per_step.toLocaleString("en")} tokens per step`;
      note.classList.remove("bad");
    } else {
      note.textContent = data.error || "cannot compute";
      note.classList.add("bad");
    }
  }
  // Settings only one family reads (data-only-family) are hidden on the other family's form.
  const showFamily = () => {
    for (const row of form.querySelectorAll("[data-only-family]")) row.hidden = row.dataset.onlyFamily !== form.elements.family.value;
  };
  form.elements.family.addEventListener("change", showFamily);
  showFamily();

  // Every invalid field says why beside itself, in red, all at once (the browser's own bubble shows one at a time).
  const fields = [...form.querySelectorAll(".form-row input, .form-row select")].filter((el) => el.type !== "hidden");
  function extraCheck(el) {
    if (el.value === "" || el.type !== "number") return "";
    const value = Number(el.value);
    if (el.dataset.below !== undefined && !(value < Number(el.dataset.below))) return `${el.name.split("__").pop()} must be below ${el.dataset.below}.`;
    if (el.dataset.above !== undefined && !(value > Number(el.dataset.above))) return `${el.name.split("__").pop()} must be above ${el.dataset.above}.`;
    if (el.dataset.divides) {
      const width = Number(form.elements[el.dataset.divides].value);
      if (value >= 1 && width >= 1 && width % value) return `n_embd (${width}) must be divisible by n_head (${value}).`;
      if (value >= 1 && width >= 1 && (width / value) % 2) return "head size (n_embd / n_head) must be even.";
    }
    return "";
  }
  function showError(el) {
    el.setCustomValidity("");
    el.setCustomValidity(el.validity.valid ? extraCheck(el) : "");
    const row = el.closest(".form-row");
    let box = row.querySelector("ul.errorlist.client");
    const message = el.validationMessage;
    if (message && !box) {
      box = document.createElement("ul");
      box.className = "errorlist client";
      el.insertAdjacentElement("afterend", box);
    }
    if (box) box.replaceChildren(...(message ? [Object.assign(document.createElement("li"), {textContent: message})] : []));
    const serverBox = row.querySelector("ul.errorlist:not(.client)");
    if (serverBox && el.dataset.touched) serverBox.remove();  // the server's verdict was about the old value
    row.classList.toggle("invalid", !!message || !!row.querySelector("ul.errorlist:not(.client)"));
    return !message;
  }
  form.noValidate = true;
  fields.forEach((el) => el.addEventListener("input", () => { el.dataset.touched = "1"; showError(el); }));
  form.addEventListener("submit", (event) => {
    const bad = fields.filter((el) => !el.closest("[hidden]")).filter((el) => !showError(el));
    const summary = document.getElementById("client-error-summary");
    summary.hidden = !bad.length;
    if (!bad.length) return;
    event.preventDefault();
    summary.textContent = `${bad.length} field${bad.length === 1 ? " needs" : "s need"} a change: each says why beside it, in red.`;
    bad[0].focus();
  });

  for (const key of ["family", "preset", "dataset"]) form.elements[key].addEventListener("change", () => preview(true));
  settings.forEach((el) => el.addEventListener("change", () => preview(false)));
  settings.forEach((el) => el.addEventListener("input", mark));  // highlight while typing, not only on blur
  preview(false);
})();
