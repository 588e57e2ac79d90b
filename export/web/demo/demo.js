// The demo: load a bundle by URL (?bundle=... fills it in and loads it), classify what is typed, show the label, the
// scores and how long the call took. Served with dist/ beside it (`npm run build`, then `node tools/serve.js`).
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let classifier = null;

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function load(event) {
  event?.preventDefault();
  const build = $("build").value === "webgpu" ? "kdedge-web-webgpu" : "kdedge-web";
  $("load").disabled = true;
  $("classify-form").hidden = true;
  $("result").hidden = true;
  status("Loading…");
  try {
    const { Classifier } = await import(`../dist/${build}.js`);
    const start = performance.now();
    classifier = await Classifier.load($("bundle").value);
    const ms = performance.now() - start;
    const { manifest } = classifier;
    const kind = manifest.task.is_regression ? "regression" : manifest.label_names.join(" / ");
    status(`Loaded ${manifest.task.name} (${kind}; ${manifest.architecture ?? "student"}, ${manifest.precision ?? ""}) ` +
      `in ${ms.toFixed(0)} ms.`);
    $("pair-field").hidden = !classifier.isPair;
    $("classify-form").hidden = false;
    document.body.dataset.state = "loaded";
  } catch (e) {
    classifier = null;
    status(`${e.name}: ${e.message}`, true);
    document.body.dataset.state = "error";
  } finally {
    $("load").disabled = false;
  }
}

async function classify(event) {
  event?.preventDefault();
  if (!classifier) return;
  try {
    const start = performance.now();
    const prediction = await classifier.predict($("text").value, classifier.isPair ? $("pair").value : null);
    const ms = performance.now() - start;
    $("label").textContent = prediction.label ?? prediction.score.toFixed(3);
    $("score").textContent = prediction.label === null ? "(score)" : `${(prediction.score * 100).toFixed(1)} %`;
    $("scores").replaceChildren(...(classifier.isRegression ? [] : softmax(prediction.logits).map((p, i) => {
      const li = document.createElement("li");
      const bar = Object.assign(document.createElement("div"), { className: "bar" });
      bar.style.width = `${(p * 100).toFixed(1)}%`;
      li.append(classifier.labels[i], bar, `${(p * 100).toFixed(1)} %`);
      return li;
    })));
    $("latency").textContent = ms.toFixed(2);
    $("env").textContent = `${globalThis.crossOriginIsolated ? "threads allowed" : "one thread (page not cross-origin isolated)"}`;
    $("result").hidden = false;
    document.body.dataset.state = "classified";
  } catch (e) {
    status(`${e.name}: ${e.message}`, true);
  }
}

function softmax(logits) {
  const max = Math.max(...logits);
  const exp = logits.map((v) => Math.exp(v - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return exp.map((v) => v / sum);
}

$("load-form").addEventListener("submit", load);
$("classify-form").addEventListener("submit", classify);
if (params.get("build")) $("build").value = params.get("build");
if (params.get("bundle")) {
  $("bundle").value = params.get("bundle");
  load();
}
