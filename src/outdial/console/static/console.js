// outdial console: the calls-per-minute chart (uPlot), the audio player's seek buttons.
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
  document.addEventListener("DOMContentLoaded", function () { drawChart(); wirePlayer(); });
  document.addEventListener("htmx:afterSwap", drawChart);
  // Redrawn at the new width when the window changes (a phone turned, a resized window).
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(drawChart, 100);
  });
})();
