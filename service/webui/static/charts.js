// Charts across a model's versions, drawn by Chart.js (vendored; global `Chart`).
const COLOURS = ["#1f6feb", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7480"];

function lineChart(canvas, labels, datasets, yTitle) {
  return new Chart(canvas, {
    type: "line",
    data: {
      labels,
      datasets: datasets.map((set, index) => ({
        borderColor: COLOURS[index % COLOURS.length],
        backgroundColor: COLOURS[index % COLOURS.length],
        spanGaps: true,
        tension: 0,
        ...set,
      })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { y: { title: { display: true, text: yTitle } },
                x: { title: { display: true, text: "version" } } },
    },
  });
}

// TI and CC (points) of each version against its parent; answer TI/CC where measured.
export function metricsChart(canvas, versions) {
  const labels = versions.map((v) => `v${v.number}`);
  const series = (pick) => versions.map((v) => (v.evaluation ? pick(v.evaluation) : null));
  const datasets = [
    { label: "TI", data: series((e) => e.ti) },
    { label: "CC", data: series((e) => e.cc) },
  ];
  if (versions.some((v) => v.evaluation?.answer_ti !== null && v.evaluation?.answer_ti !== undefined)) {
    datasets.push({ label: "answer TI", data: series((e) => e.answer_ti) },
                  { label: "answer CC", data: series((e) => e.answer_cc) });
  }
  return lineChart(canvas, labels, datasets, "points");
}

// Each evaluation set's accuracy (percent) with each version: measured after the update that
// made it, and for a version nothing evaluated (the base), before its first child's update.
export function setAccuraciesChart(canvas, versions) {
  const labels = versions.map((v) => `v${v.number}`);
  const names = [...new Set(versions.flatMap((v) => (v.evaluation?.sets || []).map((s) => s.set_name)))];
  const accuracy = (version, name) => {
    const own = (version.evaluation?.sets || []).find((s) => s.set_name === name);
    if (own) return own.accuracy_after;
    const child = versions.find((v) => v.parent_id === version.id && v.evaluation);
    const before = (child?.evaluation.sets || []).find((s) => s.set_name === name);
    return before ? before.accuracy_before : null;
  };
  const datasets = names.map((name) => ({
    label: name, data: versions.map((version) => accuracy(version, name)) }));
  return lineChart(canvas, labels, datasets, "accuracy (%)");
}

// Probabilities of each label for one image, as a horizontal bar chart.
export function probabilitiesChart(canvas, probabilities, title) {
  const labels = Object.keys(probabilities);
  return new Chart(canvas, {
    type: "bar",
    data: { labels, datasets: [{ label: title, data: labels.map((l) => probabilities[l]),
      backgroundColor: COLOURS[0] }] },
    options: { indexAxis: "y", animation: false, maintainAspectRatio: false,
      scales: { x: { min: 0, max: 1 } } },
  });
}
