// Leaderboard page: keeps the online Elo table live (figures.js draws the charts).
(function () {
  "use strict";
  const state = JSON.parse(document.getElementById("leaderboard-state").textContent);

  const table = document.querySelector('[data-testid="elo-table"] tbody');
  const status = document.getElementById("live-status");

  function cell(text, numeric) {
    const td = document.createElement("td");
    if (numeric) td.className = "num";
    td.textContent = text;
    return td;
  }

  function renderElo(rows) {
    const before = new Map([...table.querySelectorAll("tr[data-model]")].map((tr) => [tr.dataset.model, tr.dataset.votes]));
    const body = document.createDocumentFragment();
    rows.forEach((row, i) => {
      const tr = document.createElement("tr");
      tr.dataset.model = row.name;
      tr.dataset.votes = String(row.votes);
      tr.dataset.rating = row.rating.toFixed(4);
      if (before.get(row.name) !== String(row.votes)) tr.classList.add("lb-changed");
      tr.append(cell(String(i + 1), true), cell(row.name, false), cell(row.rating.toFixed(1), true), cell(String(row.votes), true));
      body.append(tr);
    });
    table.replaceChildren(body);
    const updated = document.querySelector('[data-testid="updated"]');
    if (updated) updated.textContent = new Date().toISOString();
  }

  function newerBoard() {
    const news = document.getElementById("board-news");
    if (!news || news.childElementCount) return;  // said once
    const show = document.createElement("button");
    show.type = "button";
    show.dataset.testid = "show-newer-board";
    show.textContent = "Show it";
    show.addEventListener("click", () => location.reload());
    news.append("A newer board is available. ", show);
  }

  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/leaderboard/");
    socket.onopen = () => { status.textContent = "· live"; delay = 1000; };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type !== "leaderboard.update") return;
      renderElo(message.online_elo);
      // A new snapshot replaces the whole board (and without one the board is the online Elo itself): say so
      // and offer it, unless the visitor pinned a snapshot or the Elo view. Reloading by itself moved the
      // page under whoever was reading it (the keyboard's focus and a screen reader's place back to the top).
      if (!state.pinned && (message.snapshot_id !== state.snapshot_id || state.snapshot_id === null)) newerBoard();
    };
    socket.onclose = () => {
      status.textContent = "· reconnecting";
      setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
    };
  }
  connect(1000);
})();
