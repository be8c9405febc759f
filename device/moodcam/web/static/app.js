// moodcam dashboard: live updates of the Now panel, today's timeline and the framing help over
// Server-Sent Events, and the device checks fetched once. The server renders all markup.
"use strict";

function setLive(text, ok) {
  const el = document.getElementById("live");
  el.textContent = text;
  el.className = ok ? "live on" : "live";
}

function connect() {
  const source = new EventSource("/events");
  source.onopen = () => setLive("live", true);
  source.onerror = () => setLive("reconnecting", false);
  source.onmessage = (event) => {
    const data = JSON.parse(event.data);
    document.getElementById("now-body").innerHTML = data.now_html;
    document.getElementById("today-svg").innerHTML = data.today_svg;
    document.getElementById("framing-svg").innerHTML = data.framing_svg;
  };
}

async function loadDoctor() {
  const box = document.getElementById("doctor");
  try {
    const response = await fetch(box.dataset.src);
    box.innerHTML = await response.text();
  } catch (e) {
    box.textContent = "the checks could not be loaded";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  connect();
  loadDoctor();
});
