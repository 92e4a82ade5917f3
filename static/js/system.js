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
      // Mark the answering worker in the clusters table (its PID is one of a cluster's worker PIDs).
      if (data.success) {
        for (const el of document.querySelectorAll(".worker-pid")) {
          const row = el.closest("tr");
          if (String(data.result.pid) === el.dataset.pid && row.dataset.host === data.result.host) {
            el.classList.add("answered"); el.title = "answered Check workers"; row.classList.add("answered");
            el.textContent = `${el.dataset.pid} ✓ answered`;
          }
        }
      }
      return false;
    }, 1000, 5000);
  }
})();
