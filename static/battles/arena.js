// The arena page: a session issued on the first battle, one WebSocket for prompts, streamed answers and the
// vote (a POST when the socket has closed). Every request has an error path that tells the visitor and
// re-enables what it should.
(function () {
  "use strict";
  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
  const sides = ["a", "b"];
  const config = document.getElementById("arena").dataset;
  const promptMaxChars = Number(config.promptMaxChars);
  // voteable: the answers shown can be voted on now; lastVoteable: whether they could once their turn ended
  // (a refused follow-up or regenerate changes nothing on the server, so that is what they are again).
  const state = {
    battleId: null, turn: null, version: null, voted: false, busy: false, voting: false, voteable: false,
    lastVoteable: false, socket: null, current: {}, retryTimer: null, retryUntil: 0, pendingVote: null,
    voteTimer: null, voteInFlight: false, round: 0, sendTimer: null, connecting: null, abandonConnecting: null,
  };
  // A vote sent on a socket that died without a word (a phone asleep, Wi-Fi switched to mobile data) waited
  // for the browser to notice, which can take minutes: unanswered this long, it goes over HTTP instead, where
  // sending it again is safe (a battle takes one vote; a refusal then shows the vote already cast).
  const VOTE_SOCKET_WAIT_MS = 10000;
  // The same for a prompt: the arena answers one within a second or two (its start, "busy", or a refusal), so a
  // socket silent this long is taken for dead. The prompt is not sent again by itself: the arena may have
  // started on it before the socket died, and a second start would spend the visitor's budget twice.
  const PROMPT_SOCKET_WAIT_MS = 15000;
  // And a socket still connecting this long is given up (the arena accepts one in well under a second).
  const CONNECT_WAIT_MS = 15000;
  // The C0 control characters the server drops (battles/services.py prompt_clean), so the page counts and
  // compares the prompt as the server will see it.
  const controlCharacters = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g;
  const promptOf = (text) => text.replace(controlCharacters, "").trim();
  // The visitor's session and the form token are cookies: with cookies blocked, no battle can start, and
  // "reload the page" would not help. Said plainly instead.
  const COOKIES_NEEDED = "This arena needs cookies to battle: one keeps your battle and your vote together. "
    + "Please allow cookies for this site, then press Send again.";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // One status line for both: an error interrupts a screen reader (assertive), news waits its turn; on screen
  // an error is marked by a sign as well as its colour (site.css).
  function notice(text, kind = "error") {
    $("notice").setAttribute("aria-live", kind === "info" ? "polite" : "assertive");
    $("notice").textContent = text || "";
    $("notice").classList.toggle("info", kind === "info");
  }

  // A prompt that cannot be sent: said, marked on the box, and the box focused for the fix.
  function promptRefused(text) {
    notice(text);
    $("prompt").setAttribute("aria-invalid", "true");
    $("prompt").focus();
  }

  // A screen reader is not made to read two answers at once, a frame at a time: while they stream, the columns
  // say they are busy (they are not live regions), and the status line says when both are done.
  function columnsBusy(busy) {
    for (const side of sides) $(`answer-${side}`).setAttribute("aria-busy", String(busy));
  }

  function waiting() {
    return Date.now() < state.retryUntil;
  }

  function setControls() {
    const focused = document.activeElement;
    let keyboardFocus = false;
    try {
      keyboardFocus = Boolean(focused && focused !== document.body && focused.matches(":focus-visible"));
    } catch (unknownSelector) {
      keyboardFocus = true;  // a browser before :focus-visible (Safari 15.3): as before, the box gets it
    }
    const canVote = state.battleId && state.voteable && !state.voted && !state.busy;
    for (const id of ["vote-a", "vote-b", "vote-tie", "vote-bothbad"]) $(id).disabled = !canVote;
    $("regenerate").disabled = !state.battleId || state.voted || state.busy || waiting();
    $("send").disabled = state.busy || waiting();
    // A vote on its way belongs to this round: a new round now would show its answer (the names) on the new one.
    $("new-round").disabled = state.voteInFlight;
    // A button disabled under the keyboard's focus drops it to the top of the page: it goes to the prompt box,
    // where the next thing to do is typed. Not after a tap or a click (Chrome focuses the button pressed): on a
    // phone that scrolled the page down to the box and opened the keyboard over the answers.
    if (keyboardFocus && document.activeElement.disabled) $("prompt").focus();
  }

  // POST JSON; resolves to the parsed body, or rejects with an Error whose message is safe to show.
  async function postJSON(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (networkError) {
      throw new Error("The arena could not be reached. Check your connection and try again.");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (notJson) {
      // An HTML error page (a proxy, or a CSRF refusal after the cookie expired).
      throw new Error(response.status === 403
        ? "Your page has expired. Please reload it and try again."
        : `The arena answered with an error (${response.status}). Please try again.`);
    }
    if (!response.ok) throw new Error((data && data.error) || `The arena answered with an error (${response.status}).`);
    return data;
  }

  // One socket at a time: a second send while the first still connects waits for the same socket (a socket
  // opened beside it would be left behind, its close then taken for the current one's).
  function connect() {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) return Promise.resolve(state.socket);
    if (!state.connecting) {
      state.connecting = opened();
      const done = () => { state.connecting = null; };
      state.connecting.then(done, done);
    }
    return state.connecting;
  }

  // A new socket, resolved once open. It is given up (closed, and the promise rejected) if it has not opened
  // within CONNECT_WAIT_MS (a network switched just then can leave it connecting for minutes), or when New
  // round abandons it (state.abandonConnecting).
  function opened() {
    return new Promise((resolve, reject) => {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const socket = new WebSocket(`${scheme}://${location.host}/ws/battle/`);
      let opened = false;
      // Refused before it opened: the server is down or unreachable, or the session cookie never came back.
      const refused = () => new Error("Could not connect to the arena. Please try again in a moment; if your "
        + "browser blocks cookies for this site, allow them first (a battle needs one).");
      const giveUp = (error) => {
        clearTimeout(deadline);
        state.abandonConnecting = null;
        socket.onopen = socket.onerror = socket.onclose = socket.onmessage = null;
        socket.close();
        if (state.socket === socket) state.socket = null;
        reject(error);
      };
      const deadline = setTimeout(() => giveUp(refused()), CONNECT_WAIT_MS);
      state.abandonConnecting = () => giveUp(new Error("abandoned for a new round"));
      socket.onopen = () => {
        opened = true;
        clearTimeout(deadline);
        state.abandonConnecting = null;
        resolve(socket);
      };
      socket.onerror = () => { if (!opened) giveUp(refused()); };
      socket.onclose = () => {
        if (!opened) return giveUp(refused());
        if (state.socket !== socket) return;  // an earlier socket: nothing on the page is its own any more
        state.socket = null;
        clearTimeout(state.sendTimer);
        if (state.voting) return voteOverHttpInstead();
        if (state.busy) {
          state.busy = false;
          columnsBusy(false);
          notice("The connection was lost. Regenerate or start a new round.");
          setControls();
        }
        state.voting = false;
      };
      socket.onmessage = (message) => {
        try { handle(JSON.parse(message.data)); } catch (error) { console.error(error); }
      };
      state.socket = socket;
    });
  }

  // A side's answer as it ends: the sanitised HTML of a finished one (rendered by the server), or the text so
  // far and why it stopped.
  function answerDone(answer, html) {
    answer.classList.remove("streaming");
    answer.innerHTML = html;
  }

  function answerFailed(answer, message) {
    const error = document.createElement("p");
    error.className = "error";
    error.textContent = message;
    answer.classList.remove("streaming");
    answer.classList.add("partial");  // the text so far, as it streamed: its line breaks kept
    answer.appendChild(error);
  }

  // The answer element for turn `turn` on one side: a regenerated turn's block is reused, but only if it is
  // that turn's (a follow-up whose turn_started was lost with the socket, then regenerated, is a new block,
  // not the previous turn's answers replaced under the previous prompt).
  function exchangeFor(side, prompt, regenerated, turn) {
    const column = $(`answer-${side}`);
    let block = column.lastElementChild;
    if (!regenerated || !block || block.dataset.turn !== String(turn)) {
      block = document.createElement("div");
      block.className = "exchange";
      block.dataset.turn = String(turn);
      const you = document.createElement("div");
      you.className = "you";
      you.dir = "auto";  // an Arabic or Hebrew prompt reads right to left, whatever the page's direction
      you.textContent = prompt;
      block.appendChild(you);
      column.appendChild(block);
    }
    const old = block.querySelector(".answer");
    if (old) old.remove();
    const answer = document.createElement("div");
    answer.className = "answer streaming";
    answer.dir = "auto";
    block.appendChild(answer);
    return answer;
  }

  // The status line is read out by a screen reader at each change: it says the wait once and its end once, and
  // the seconds left are counted down on the Send button, which is not.
  function startRetryCountdown(seconds, message) {
    clearInterval(state.retryTimer);
    state.retryUntil = Date.now() + seconds * 1000;
    notice(message, "info");
    const tick = () => {
      const left = Math.ceil((state.retryUntil - Date.now()) / 1000);
      $("send").textContent = left > 0 ? `Send (${left} s)` : "Send";
      if (left <= 0) {
        clearInterval(state.retryTimer);
        notice("The models may be free now: press Send to try again.", "info");
      }
      setControls();
    };
    tick();
    state.retryTimer = setInterval(tick, 1000);
  }

  function handle(event) {
    clearTimeout(state.sendTimer);  // the socket is alive
    switch (event.type) {
      case "turn_started":
        state.battleId = event.battle_id;
        remember(event.battle_id);
        state.turn = event.turn;
        state.version = event.version;
        // The prompt leaves the box only now: a start told "busy" or refused keeps it for the next try.
        if (!event.regenerated && promptOf($("prompt").value) === event.prompt) $("prompt").value = "";
        for (const side of sides) state.current[side] = exchangeFor(side, event.prompt, event.regenerated, event.turn);
        columnsBusy(true);
        notice("Both models are answering…", "info");  // the columns are not read as they stream: say so once
        break;
      case "delta":
        // Plain text while streaming (never parsed as HTML); the sanitised Markdown arrives at the end.
        for (const [side, text] of Object.entries(event.text)) {
          if (state.current[side]) state.current[side].textContent += text;
        }
        break;
      case "side_restart":
        // The server of this side went away mid-answer; the answer starts over on another one.
        state.current[event.side].textContent = "";
        state.current[event.side].dataset.restarted = "true";
        break;
      case "side_done":
        answerDone(state.current[event.side], event.html);
        break;
      case "side_error":
        answerFailed(state.current[event.side], event.message);
        break;
      case "blind_broken":
        $("blindness").textContent = event.message;
        break;
      case "voted":
        voteAnswered();
        state.busy = state.voting = state.voteInFlight = false;
        revealed(event.battle);
        break;
      case "turn_done":
        state.busy = false;
        state.voteable = state.lastVoteable = event.voteable;
        columnsBusy(false);
        if (event.voteable) notice("Both answers are finished; you can vote now.", "info");
        else notice("This round can't be voted on because a side failed. Regenerate or start a new round.");
        break;
      case "replaced":
        // Another tab of this visitor regenerated the battle and its answers go on there: this tab lets the
        // battle go (Send starts a new one) rather than pull it back and forth with that tab.
        if (event.battle_id === state.battleId) {
          remember(null);
          Object.assign(state, { battleId: null, voteable: false, lastVoteable: false });
        }
        state.busy = false;
        notice(event.message);
        break;
      case "busy":
        state.busy = false;
        state.voteable = state.lastVoteable;  // nothing was started: the answers shown are as they were
        startRetryCountdown(event.retry_after, event.message);
        break;
      case "error":
        voteAnswered();
        if (state.voting) refreshAfterRefusal();
        state.busy = state.voting = state.voteInFlight = false;
        // A refused follow-up or regenerate rolled back on the server: the answers shown can still be voted on
        // (the message may say so).
        state.voteable = state.lastVoteable;
        notice(event.message);
        break;
    }
    setControls();
  }

  async function send(message) {
    if (!navigator.cookieEnabled) return notice(COOKIES_NEEDED);
    const round = state.round;
    notice("");
    state.busy = true;
    state.voteable = false;
    setControls();
    try {
      if (message.type === "start") await postJSON("/api/session", {});
      const socket = await connect();
      // New round pressed while this connected: the prompt is not the new round's (a follow-up would bring
      // the old battle back onto the cleared page). It stays in the box, to be sent again.
      if (round !== state.round) return;
      socket.send(JSON.stringify(message));
      clearTimeout(state.sendTimer);
      state.sendTimer = setTimeout(promptUnanswered, PROMPT_SOCKET_WAIT_MS);
    } catch (error) {
      if (round !== state.round) return;  // the new round has nothing to do with it
      state.busy = false;
      state.voteable = state.lastVoteable;  // never sent: the answers shown are as they were
      notice(error.message);
      setControls();
    }
  }

  $("send").closest("form").addEventListener("submit", (event) => {
    event.preventDefault();
    const prompt = promptOf($("prompt").value);
    if (!prompt) return promptRefused("Please type a prompt first.");
    // Counted in characters (code points), as the server counts: .length counts UTF-16 units, an emoji as two.
    // The box has no maxlength, which cut a long paste short without a word; the text stays for shortening.
    const length = Array.from(prompt).length;
    if (length > promptMaxChars) {
      const number = (n) => n.toLocaleString("en");
      return promptRefused(`Your prompt is ${number(length)} characters long, ${number(length - promptMaxChars)} over the `
        + `limit of ${number(promptMaxChars)}. Please shorten it.`);
    }
    $("prompt").removeAttribute("aria-invalid");
    // A battle voted on, or let go to another tab: what is on the page is not this prompt's conversation.
    if (state.voted || !state.battleId) newRound();
    send(state.battleId ? { type: "continue", battle_id: state.battleId, prompt } : { type: "start", prompt });
  });

  $("regenerate").addEventListener("click", () => send({ type: "regenerate", battle_id: state.battleId }));

  for (const id of ["vote-a", "vote-b", "vote-tie", "vote-bothbad"]) {
    $(id).addEventListener("click", async (event) => {
      const vote = { outcome: event.currentTarget.dataset.outcome, turn: state.turn, version: state.version };
      state.busy = true;
      state.voteInFlight = true;  // by either way, until it is answered
      setControls();
      if (state.socket && state.socket.readyState === WebSocket.OPEN) {
        // On the socket the battle streamed over ("voted" or "error" comes back on it): half the arena's
        // work of a vote over HTTP.
        state.voting = true;
        state.pendingVote = vote;
        state.socket.send(JSON.stringify({ type: "vote", battle_id: state.battleId, ...vote }));
        state.voteTimer = setTimeout(voteOverHttpInstead, VOTE_SOCKET_WAIT_MS);
        return;
      }
      voteOverHttp(vote);
    });
  }

  async function voteOverHttp(vote) {
    try {
      revealed(await postJSON(`/api/battles/${state.battleId}/vote`, vote));
    } catch (error) {
      notice(error.message);
      refreshAfterRefusal();
    } finally {
      state.busy = state.voteInFlight = false;
      setControls();
    }
  }

  // A prompt sent on a socket that stayed silent: the socket is dropped (nothing it says later lands here) and
  // the visitor told. The prompt is still in the box: it leaves only when its turn starts.
  // A page asleep (a phone locked) runs no timer and reads no socket: on waking, an overdue timer may fire
  // before the messages that came meanwhile are read. Such a timer waits a moment more.
  let visibleSince = Date.now();
  document.addEventListener("visibilitychange", () => { if (!document.hidden) visibleSince = Date.now(); });
  const WAKING_MS = 3000;

  function promptUnanswered() {
    if (!state.busy || state.voting) return;
    const awake = Date.now() - visibleSince;
    if (document.hidden || awake < WAKING_MS) {
      state.sendTimer = setTimeout(promptUnanswered, WAKING_MS - Math.max(0, awake) + 100);
      return;
    }
    dropSocket();
    state.busy = false;
    state.voteable = state.lastVoteable;
    columnsBusy(false);
    notice("The arena has not answered: the connection seems to be lost. Please try again.");
    setControls();
    // A follow-up or a regenerate may have reached the arena before the connection went: if it began, the
    // battle is shown as it stands (its answers, or what to do about them).
    showIfMovedOn("The connection was lost after the arena began on your prompt", {
      voteable: "here are its answers, and you can vote on them.",
      pending: "its answers are not finished. Regenerate to have them written again, or start a new round.",
      failed: "a side failed. Regenerate or start a new round.",
    }).then((last) => {
      // The prompt began its turn: it leaves the box, as at its start (sending it again would ask it twice).
      if (last && promptOf($("prompt").value) === last.prompt) $("prompt").value = "";
    });
  }

  function voteAnswered() {
    clearTimeout(state.voteTimer);
    state.pendingVote = null;
  }

  // The socket closed, or stayed silent, before the vote sent on it was answered: the same vote over HTTP
  // (the socket is dropped first, so that a late answer on it cannot land as well).
  function voteOverHttpInstead() {
    const vote = state.pendingVote;
    voteAnswered();
    state.voting = false;
    dropSocket();
    if (vote) voteOverHttp(vote);
  }

  // Close the socket without hearing from it again: nothing it still sends lands on the page.
  function dropSocket() {
    const socket = state.socket;
    if (!socket) return;
    socket.onclose = socket.onmessage = null;
    socket.close();
    state.socket = null;
  }

  // The battle as the arena has it now (what a visitor may see of it); null if it is gone. Rejects when the
  // arena cannot be reached.
  async function battleFromServer(battleId) {
    const response = await fetch(`/api/battles/${battleId}`, { credentials: "same-origin" });
    return response.ok ? response.json() : null;
  }

  // A vote refused: the battle as the arena has it says what to show. Voted on already (just before the
  // connection dropped, or in another tab): the models, as that vote revealed them, not a vote that can never
  // succeed. Answered again in another tab (a regenerate or a follow-up there, after this tab's answers
  // ended): those answers, to be read and voted on, where the vote on the old ones was refused at each try.
  // Any other refusal keeps its own message.
  function refreshAfterRefusal() {
    return showIfMovedOn("These answers were written again in another window or tab", {
      voteable: "here they are now, and you can vote on them.",
      pending: "they are still being written there: vote there, or reload this page once they have finished.",
      failed: "a side failed there, so they can't be voted on. Regenerate or start a new round.",
    });
  }

  // The battle as the arena has it, shown if it has moved on from what the page shows (a turn or a version
  // the page never saw), the notice saying why (`what`) and, after a comma, what now (`then`, by the state of
  // the last turn). A battle voted on shows its names. Nothing changes if the arena cannot be reached, or
  // the visitor has moved on meanwhile (another battle, or something sent). Resolves to the last turn shown,
  // if the battle was shown.
  async function showIfMovedOn(what, then) {
    const battleId = state.battleId;
    if (!battleId) return null;
    let battle = null;
    try { battle = await battleFromServer(battleId); } catch (unreachable) { return null; }
    if (!battle || !battle.turns.length || battleId !== state.battleId || state.busy) return null;
    const last = battle.turns[battle.turns.length - 1];
    let shown = null;
    if (battle.voted) {
      revealed(battle);
    } else if (last.index !== state.turn || last.version !== state.version) {
      showBattle(battle);
      const pending = last.status_a === "pending" || last.status_b === "pending";
      const now = state.voteable ? then.voteable : pending ? then.pending : then.failed;
      notice(`${what}; ${now}`, state.voteable ? "info" : "error");
      shown = last;
    }
    setControls();
    return shown;
  }

  function revealed(battle) {
    state.voted = true;
    $("model-a").textContent = `— ${battle.model_a}`;
    $("model-b").textContent = `— ${battle.model_b}`;
    // The names in the status line too: a screen reader announces it, not the headings it would have to find.
    const names = `Model A was ${battle.model_a}; model B was ${battle.model_b}.`;
    if (battle.counted) notice(`Thanks! Your vote is recorded. ${names} Type a new prompt or start a new round.`, "info");
    else notice(`Your vote is recorded but not counted: ${battle.excluded_reason} ${names}`, "info");
  }

  function newRound() {
    voteAnswered();  // a vote still on its way is the old round's: no retry of it over HTTP lands on this one
    remember(null);
    state.round += 1;  // a send still connecting is the old round's: it is not sent (see send)
    clearTimeout(state.sendTimer);
    if (state.busy && !state.voting) {
      // Answers still streaming: leave them (the server stops a stream whose socket closes, as when a visitor
      // leaves), so that Send works now rather than after the old turn's deadline, and none of its frames
      // land on the new round's page. The next send opens a new socket. One still connecting is given up too
      // (the send waiting on it ends quietly, its round being over): it may be hung on a network just switched.
      if (state.abandonConnecting) state.abandonConnecting();
      if (state.socket) dropSocket();
      state.busy = false;
    }
    Object.assign(state, {
      battleId: null, turn: null, version: null, voted: false, voteable: false, lastVoteable: false, current: {},
    });
    for (const side of sides) { $(`answer-${side}`).replaceChildren(); $(`model-${side}`).textContent = ""; }
    columnsBusy(false);
    $("blindness").textContent = "";
    notice("");
    setControls();
  }
  // The battle on the page is remembered for this tab (sessionStorage), so that a reload, or coming back from a
  // link opened in an answer, shows it again from the server rather than an empty arena (its answers spent
  // the visitor's budget and may still be voted on).
  const BATTLE_KEY = "arena.battle";

  function remember(battleId) {
    try {
      if (battleId) sessionStorage.setItem(BATTLE_KEY, battleId);
      else sessionStorage.removeItem(BATTLE_KEY);
    } catch (unavailable) {
      // Storage refused (a private window's quota, a policy): the page works as before, without the restore.
    }
  }

  async function restore() {
    let battleId = null;
    try { battleId = sessionStorage.getItem(BATTLE_KEY); } catch (unavailable) { return; }
    if (!battleId) return;
    const round = state.round;
    let battle = null;
    try { battle = await battleFromServer(battleId); } catch (unreachable) { return; }
    // The visitor moved on meanwhile: started another battle, sent a prompt (the old battle would appear under
    // the new one), or began a new round.
    if (state.battleId || state.busy || round !== state.round) return;
    if (!battle || !battle.turns.length) return remember(null);  // gone (another session, or deleted)
    state.battleId = battleId;
    showBattle(battle);
    if (battle.voted) return setControls();
    if (state.voteable) notice("Your battle is back as you left it; you can vote now.", "info");
    else notice("Your battle is back as you left it. Regenerate or start a new round.");
    setControls();
  }

  // The battle as the arena has it, in place of what the page shows (after a reload, or a change made in
  // another tab).
  function showBattle(battle) {
    for (const side of sides) $(`answer-${side}`).replaceChildren();
    for (const turn of battle.turns) {
      for (const side of sides) {
        const answer = exchangeFor(side, turn.prompt, false, turn.index);
        if (turn[`html_${side}`] !== undefined) {
          answerDone(answer, turn[`html_${side}`]);
        } else {
          answer.textContent = turn[`answer_${side}`];
          // Still being written (in another tab, or a stream just stopped) is not the same as failed.
          const pending = turn[`status_${side}`] === "pending";
          answerFailed(answer, pending ? "This answer is not finished yet." : "This answer did not finish.");
        }
      }
    }
    const last = battle.turns[battle.turns.length - 1];
    state.turn = last.index;
    state.version = last.version;
    state.voteable = state.lastVoteable = last.status_a === "done" && last.status_b === "done";
    $("blindness").textContent = battle.not_blind || "";  // as the stream said it
    if (battle.voted) revealed(battle);
  }

  $("new-round").addEventListener("click", () => {
    newRound();
    notice("New round: type your prompt.", "info");  // the page was cleared: said, not only seen
    $("prompt").focus();
  });
  $("prompt").addEventListener("input", () => $("prompt").removeAttribute("aria-invalid"));
  setControls();
  restore();
})();
