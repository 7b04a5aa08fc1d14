// The arena page: one WebSocket for prompts and streamed answers, one POST for the vote.
(function () {
  "use strict";
  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
  const sides = ["a", "b"];
  const state = { battleId: null, voted: false, busy: false, voteable: false, socket: null, current: {} };

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function notice(text, kind = "error") {
    $("notice").textContent = text || "";
    $("notice").classList.toggle("info", kind === "info");
  }

  function setControls() {
    const canVote = state.battleId && state.voteable && !state.voted && !state.busy;
    for (const id of ["vote-a", "vote-b", "vote-tie", "vote-bothbad"]) $(id).disabled = !canVote;
    $("regenerate").disabled = !state.battleId || state.voted || state.busy;
    $("send").disabled = state.busy;
  }

  function connect() {
    return new Promise((resolve, reject) => {
      if (state.socket && state.socket.readyState === WebSocket.OPEN) return resolve(state.socket);
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${location.host}/ws/battle/`);
      socket.onopen = () => resolve(socket);
      socket.onerror = () => reject(new Error("Could not connect to the arena. Reload the page."));
      socket.onclose = () => {
        if (state.busy) { state.busy = false; notice("The connection was lost. Regenerate or start a new round."); setControls(); }
      };
      socket.onmessage = (message) => handle(JSON.parse(message.data));
      state.socket = socket;
    });
  }

  function exchangeFor(side, prompt, regenerated) {
    const column = $(`answer-${side}`);
    let block = column.lastElementChild;
    if (!regenerated || !block) {
      block = document.createElement("div");
      block.className = "exchange";
      const you = document.createElement("div");
      you.className = "you";
      you.textContent = prompt;
      block.appendChild(you);
      column.appendChild(block);
    }
    const old = block.querySelector(".answer");
    if (old) old.remove();
    const answer = document.createElement("div");
    answer.className = "answer streaming";
    block.appendChild(answer);
    return answer;
  }

  function handle(event) {
    switch (event.type) {
      case "turn_started":
        state.battleId = event.battle_id;
        for (const side of sides) state.current[side] = exchangeFor(side, event.prompt, event.regenerated);
        break;
      case "delta":
        // Plain text while streaming (never parsed as HTML); the sanitised Markdown arrives at the end.
        state.current[event.side].textContent += event.text;
        break;
      case "side_done":
        state.current[event.side].classList.remove("streaming");
        state.current[event.side].innerHTML = event.html;
        break;
      case "side_error": {
        const error = document.createElement("p");
        error.className = "error";
        error.textContent = event.message;
        state.current[event.side].classList.remove("streaming");
        state.current[event.side].appendChild(error);
        break;
      }
      case "turn_done":
        state.busy = false;
        state.voteable = event.voteable;
        if (!event.voteable) notice("This round can't be voted on because a side failed. Regenerate or start a new round.");
        break;
      case "error":
        state.busy = false;
        notice(event.message);
        break;
    }
    setControls();
  }

  async function send(message) {
    notice("");
    try {
      const socket = await connect();
      state.busy = true;
      state.voteable = false;
      setControls();
      socket.send(JSON.stringify(message));
    } catch (error) {
      state.busy = false;
      notice(error.message);
      setControls();
    }
  }

  $("send").closest("form").addEventListener("submit", (event) => {
    event.preventDefault();
    const prompt = $("prompt").value.trim();
    if (!prompt) return notice("Please type a prompt first.");
    if (prompt.length > window.ARENA.promptMaxChars) return notice(`Your prompt is too long; the limit is ${window.ARENA.promptMaxChars} characters.`);
    if (state.voted) newRound();
    $("prompt").value = "";
    send(state.battleId ? { type: "continue", battle_id: state.battleId, prompt } : { type: "start", prompt });
  });

  $("regenerate").addEventListener("click", () => send({ type: "regenerate", battle_id: state.battleId }));

  for (const id of ["vote-a", "vote-b", "vote-tie", "vote-bothbad"]) {
    $(id).addEventListener("click", async (event) => {
      const outcome = event.currentTarget.dataset.outcome;
      state.busy = true;
      setControls();
      const response = await fetch(`/api/battles/${state.battleId}/vote`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ outcome }),
        credentials: "same-origin",
      });
      const body = await response.json();
      state.busy = false;
      if (!response.ok) { notice(body.error); setControls(); return; }
      state.voted = true;
      $("model-a").textContent = `— ${body.model_a}`;
      $("model-b").textContent = `— ${body.model_b}`;
      if (body.counted) notice("Thanks! Your vote is recorded. Type a new prompt or start a new round.", "info");
      else notice(`Your vote is recorded but not counted: ${body.excluded_reason}`, "info");
      setControls();
    });
  }

  function newRound() {
    Object.assign(state, { battleId: null, voted: false, voteable: false, current: {} });
    for (const side of sides) { $(`answer-${side}`).replaceChildren(); $(`model-${side}`).textContent = ""; }
    notice("");
    setControls();
  }
  $("new-round").addEventListener("click", newRound);
  setControls();
})();
