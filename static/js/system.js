// System page: wait for the worker check's answer.
(() => {
  const box = document.getElementById("check-result");
  if (box) {
    hrgc.poll(async () => {
      const r = await fetch(box.dataset.url);
      const data = await r.json();
      if (!data.done) return true;
      box.className = data.success ? "ok" : "bad";
      box.textContent = data.success
        ? `Worker ${data.result.worker} answered at ${data.result.at} (${data.result.database}) in ${data.seconds.toFixed(2)} s.`
        : `The task failed: ${data.result}`;
      return false;
    }, 1000, 5000);
  }
})();
