// outdial console: the charts (uPlot), the audio player's seek buttons.
(function () {
  "use strict";
  function drawChart() {
    var el = document.getElementById("chart");
    var data = document.getElementById("per-minute");
    if (!el || !data || !window.uPlot) return;
    var points = JSON.parse(data.textContent);
    var xs = points.map(function (p) { return p[0]; });
    var ys = points.map(function (p) { return p[1]; });
    if (xs.length === 0) { var now = Date.now() / 1000; xs = [now - 3600, now]; ys = [0, 0]; }
    el.innerHTML = "";
    var width = Math.max(260, el.clientWidth);
    new window.uPlot({
      width: width, height: 220,
      series: [{}, { label: "calls/min", stroke: "#0a58ca", fill: "rgba(10,88,202,0.12)", points: { show: false } }],
      axes: [{}, { label: "calls" }],
      scales: { x: { time: true } },
    }, [xs, ys], el);
  }
  // The campaign's answer rate per bucket: [start s, rate % or null, attempts, answered].
  function drawRateChart() {
    var el = document.getElementById("rate-chart");
    var data = document.getElementById("rate-points");
    if (!el || !data || !window.uPlot) return;
    var points = JSON.parse(data.textContent);
    var xs = points.map(function (p) { return p[0]; });
    var rates = points.map(function (p) { return p[1]; });
    var attempts = points.map(function (p) { return p[2]; });
    if (xs.length === 1) {
      // One bucket is a dot with no span: widen the axis by a bucket on each side.
      var step = 60; xs = [xs[0] - step, xs[0], xs[0] + step];
      rates = [null, rates[0], null]; attempts = [null, attempts[0], null];
    }
    el.innerHTML = "";
    var width = Math.max(260, el.clientWidth);
    // Attempts as bars behind, the rate as a line on top: one bucket still shows both.
    var bars = window.uPlot.paths && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.7, 48] }) : undefined;
    new window.uPlot({
      width: width, height: 220,
      series: [
        {},
        { label: "attempts", scale: "n", stroke: "#84adff", fill: "rgba(10,88,202,0.18)",
          paths: bars, points: { show: false } },
        { label: "answer rate %", scale: "pct", stroke: "#1a7f37", width: 2,
          points: { show: xs.length < 40, size: 6 },
          value: function (u, v) { return v == null ? "-" : v + "%"; } },
      ],
      axes: [{}, { scale: "pct", label: "answer rate", values: function (u, vs) { return vs.map(function (v) { return v + "%"; }); } },
             { scale: "n", side: 1, label: "attempts", grid: { show: false } }],
      scales: { x: { time: true }, pct: { range: [0, 100] }, n: { range: function (u, lo, hi) { return [0, Math.max(1, hi)]; } } },
    }, [xs, attempts, rates], el);
  }
  function wirePlayer() {
    var player = document.getElementById("player");
    var out = document.getElementById("duration");
    if (!player) return;
    player.addEventListener("loadedmetadata", function () {
      if (out) out.textContent = player.duration.toFixed(1) + " s";
    });
    document.querySelectorAll("button.seek").forEach(function (b) {
      b.addEventListener("click", function () {
        player.currentTime = parseFloat(b.dataset.at) || 0;
        player.play();
      });
    });
  }
  function drawCharts() { drawChart(); drawRateChart(); }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(); wirePlayer(); });
  document.addEventListener("htmx:afterSwap", drawCharts);
  // Redrawn at the new width when the window changes (a phone turned, a resized window).
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(drawCharts, 100);
  });
})();
