// Blind rating: the keys a, t and b press the matching button (not while typing in a field).
(() => {
  const keys = {a: "choose-a", t: "choose-tie", b: "choose-b"};
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || /INPUT|TEXTAREA|SELECT/.test(event.target.tagName)) return;
    const id = keys[event.key.toLowerCase()];
    if (id) { event.preventDefault(); document.getElementById(id).click(); }
  });
})();
