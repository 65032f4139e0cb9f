import Mustache

/// The dashboard's pages as Mustache templates: one layout, and one template per page that fills its `content`
/// block. Values are HTML-escaped by the templates; the few `{{{…}}}` are SVG and HTML built and escaped in code.
enum Templates {
    static func library() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in all { try library.register(text, named: name) }
        return library
    }

    static let all: [(String, String)] = [
        ("layout", layout), ("runs", runs), ("run", run), ("parallel", parallel), ("step", step),
        ("artifact", artifact),
        ("lineage", lineage), ("models", models), ("model", model), ("compare", compare), ("datasets", datasets),
        ("features", features),
        ("message", message), ("login", login),
    ]

    static let layout = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Sluice</title><link rel="stylesheet" href="/static/dashboard.css">
        <script src="/static/dashboard.js" defer></script></head>
        <body{{#live}} data-live="{{live}}"{{/live}}>
        <header class="top"><a class="brand" href="/runs">Sluice</a>
        <nav><a href="/runs" class="{{navRuns}}">Runs</a><a href="/models" class="{{navModels}}">Models</a>
        <a href="/datasets" class="{{navDatasets}}">Datasets</a><a href="/features" class="{{navFeatures}}">Features</a><a href="/compare" class="{{navCompare}}">Compare</a><a href="/parallel" class="{{navParallel}}">Params</a></nav>
        <span class="stack" title="metadata store">{{stack}}</span></header>
        <main id="live-root">{{$content}}{{/content}}</main>
        </body></html>
        """

    static let runs = """
        {{<layout}}{{$content}}
        <h1>Runs</h1>
        <form class="filters" method="get" action="/runs">
        <label>Pipeline <select name="pipeline"><option value="">all</option>{{#pipelines}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/pipelines}}</select></label>
        <label>Status <select name="status"><option value="">all</option>{{#statuses}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/statuses}}</select></label>
        <label>User <input name="user" value="{{user}}" size="10"></label>
        <label>Parameter <input name="param" value="{{param}}" placeholder="train.rounds=50" size="16"></label>
        <label>Search <input name="filter" value="{{filter}}" placeholder="metrics.auc > 0.8 and params.learner = 'gbdt'" size="36"></label>
        <label>Order <input name="order_by" value="{{orderBy}}" placeholder="metrics.auc DESC" size="16"></label>
        <button type="submit">Filter</button>{{#filtered}} <a href="/runs">clear</a>{{/filtered}}
        </form>
        <form id="compare-form" method="get" action="/compare"></form>
        <table class="list" id="runs"><thead><tr><th></th><th>Run</th><th>Pipeline</th><th>Status</th><th>Trigger</th>
        <th>Started</th><th class="num">Duration</th><th>User</th><th>Git</th></tr></thead><tbody>
        {{#runs}}<tr data-run="{{id}}" data-status="{{status}}"><td><input type="checkbox" name="runs" value="{{id}}" form="compare-form" aria-label="compare {{id}}"></td>
        <td><a class="mono" href="/runs/{{id}}">{{id}}</a></td><td>{{pipeline}}</td><td><span class="badge {{status}}">{{status}}</span></td>
        <td>{{trigger}}</td><td><time datetime="{{startedISO}}">{{started}}</time></td><td class="num">{{duration}}</td><td>{{user}}</td>
        <td class="mono">{{git}}{{#dirty}}<span class="dirty" title="uncommitted changes">+dirty</span>{{/dirty}}</td></tr>
        {{/runs}}{{^runs}}<tr><td colspan="9" class="empty">No runs{{#filtered}} match these filters{{/filtered}}.</td></tr>{{/runs}}
        </tbody></table>
        <p class="actions"><button type="submit" form="compare-form">Compare selected runs</button></p>
        <nav class="pager">{{#previous}}<a href="{{previous}}" rel="prev">← newer</a>{{/previous}}
        <span>page {{page}}</span>{{#next}}<a href="{{next}}" rel="next">older →</a>{{/next}}</nav>
        {{/content}}{{/layout}}
        """

    static let parallel = """
        {{<layout}}{{$content}}
        <h1>Params against a metric</h1>
        <form class="filters" method="get" action="/parallel">
        <label>Experiment <select name="experiment"><option value="">all</option>{{#experiments}}<option value="{{id}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/experiments}}</select></label>
        <label>Search <input name="filter" value="{{filter}}" placeholder="params.learner = 'gbdt'" size="36"></label>
        <label>Metric <select name="metric">{{#metrics}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/metrics}}</select></label>
        <button type="submit">Draw</button></form>
        {{#chart}}<p class="meta">{{plotted}} of {{count}} runs have the metric; each line is a run, blue the best values, red the worst.</p>
        <figure class="chart" id="parallel">{{{chart}}}</figure>{{/chart}}
        {{^chart}}<p class="empty">No runs with metrics match.</p>{{/chart}}
        {{/content}}{{/layout}}
        """

    static let run = """
        {{<layout}}{{$content}}
        <h1>Run <span class="mono">{{id}}</span> <span class="badge {{status}}" id="run-status">{{status}}</span></h1>
        {{#name}}<p class="meta" id="run-name">{{name}} · {{kind}} run</p>{{/name}}
        <p class="meta">{{#isPipeline}}pipeline{{/isPipeline}}{{^isPipeline}}experiment{{/isPipeline}} <b>{{pipeline}}</b> · {{trigger}} · started <time datetime="{{startedISO}}">{{started}}</time>
        · {{duration}} · {{user}}@{{host}} · git <span class="mono">{{git}}</span>{{#dirty}}<span class="dirty">+dirty</span>{{/dirty}}</p>
        {{#error}}<pre class="error">{{error}}</pre>{{/error}}
        {{#cancellable}}<form method="post" action="/runs/{{id}}/cancel" class="inline"><button class="danger" type="submit">Cancel run</button></form>{{/cancellable}}
        <section id="tracking"><h2>Tags and note</h2>
        <table class="list" id="tags"><tbody>{{#tags}}<tr data-tag="{{key}}"><td>{{key}}</td><td>{{value}}</td>
        <td><form method="post" action="/runs/{{id}}/tags" class="inline"><input type="hidden" name="remove" value="{{key}}"><button type="submit">Remove</button></form></td></tr>{{/tags}}
        {{^tags}}<tr><td class="empty">No tags.</td></tr>{{/tags}}</tbody></table>
        <form method="post" action="/runs/{{id}}/tags" class="inline" id="tag-form"><input name="key" placeholder="key" size="12" required>
        <input name="value" placeholder="value" size="16"><button type="submit">Set tag</button></form>
        <div class="note" id="note">{{{noteHTML}}}</div>
        <form method="post" action="/runs/{{id}}/note" id="note-form"><textarea name="note" rows="4" cols="80" placeholder="A note in Markdown">{{noteText}}</textarea>
        <br><button type="submit">Save note</button></form></section>
        {{#hasParams}}<section><h2>Params</h2><table class="list" id="params"><tbody>{{#params}}<tr><td>{{key}}</td><td>{{value}}</td></tr>{{/params}}</tbody></table></section>{{/hasParams}}
        {{#hasMetrics}}<section><h2>Metrics</h2><table class="list" id="run-metrics"><thead><tr><th>Metric</th><th class="num">Latest</th><th class="num">Step</th></tr></thead><tbody>
        {{#metrics}}<tr data-metric="{{key}}"><td>{{key}}</td><td class="num">{{value}}</td><td class="num">{{step}}</td></tr>{{/metrics}}</tbody></table></section>{{/hasMetrics}}
        {{#charts}}<figure class="chart" data-metric="{{name}}">{{{svg}}}</figure>{{/charts}}
        {{#hasInputs}}<section><h2>Datasets</h2><table class="list"><tbody>{{#inputs}}<tr><td>{{name}}</td><td class="mono">{{digest}}</td><td>{{context}}</td></tr>{{/inputs}}</tbody></table></section>{{/hasInputs}}
        {{#hasSteps}}<section><h2>Graph</h2><div class="graph-frame">{{{graph}}}</div>
        <p class="legend"><span class="badge completed">completed</span><span class="badge cached">cached</span>
        <span class="badge running">running</span><span class="badge failed">failed</span><span class="badge skipped">skipped</span></p></section>
        <section><h2>Steps</h2><table class="list" id="steps"><thead><tr><th>Step</th><th>Kind</th><th>Status</th><th class="num">Duration</th>
        <th>Cached from</th><th>Outputs</th></tr></thead><tbody>
        {{#steps}}<tr data-step="{{name}}" data-status="{{status}}"><td><a href="/runs/{{run}}/steps/{{name}}">{{name}}</a></td><td>{{kind}}</td>
        <td><span class="badge {{status}}">{{status}}</span></td><td class="num">{{duration}}</td>
        <td>{{#cachedFromRun}}<a class="mono" href="/runs/{{cachedFromRun}}/steps/{{name}}">{{cachedFromRun}}</a>{{/cachedFromRun}}</td>
        <td>{{#outputs}}<a href="/artifacts/{{id}}">{{slot}}</a> {{/outputs}}</td></tr>{{/steps}}
        </tbody></table></section>
        <section><h2>Config</h2><pre class="code">{{config}}</pre></section>{{/hasSteps}}
        <section><h2>Environment</h2><dl class="facts">{{#environment}}<dt>{{key}}</dt><dd>{{value}}</dd>{{/environment}}</dl></section>
        {{/content}}{{/layout}}
        """

    static let step = """
        {{<layout}}{{$content}}
        <p class="crumbs"><a href="/runs/{{runID}}">run {{runID}}</a> ›</p>
        <h1>Step {{name}} <span class="badge {{status}}" id="step-status">{{status}}</span></h1>
        {{#error}}<pre class="error">{{error}}</pre>{{/error}}
        <dl class="facts"><dt>Kind</dt><dd>{{kind}}</dd><dt>Step run</dt><dd class="mono">{{id}}</dd>
        <dt>Started</dt><dd>{{started}}</dd><dt>Ended</dt><dd>{{ended}}</dd><dt>Duration</dt><dd>{{duration}}</dd>
        <dt>Cache key</dt><dd class="mono">{{cacheKey}}</dd><dt>Seed</dt><dd class="mono">{{seed}}</dd>
        {{#cachedFromRun}}<dt>Cached from</dt><dd><a class="mono" href="/runs/{{cachedFromRun}}/steps/{{name}}">run {{cachedFromRun}}</a></dd>{{/cachedFromRun}}
        {{#upstream}}<dt>Reads from</dt><dd>{{upstream}}</dd>{{/upstream}}</dl>
        <section><h2>Parameters</h2><pre class="code">{{parameters}}</pre></section>
        <section><h2>Inputs</h2><table class="list" id="inputs"><tbody>{{#inputs}}<tr><td>{{slot}}</td><td><a class="mono" href="/artifacts/{{id}}">{{id}}</a></td><td>{{typeName}}</td><td class="num">{{size}}</td></tr>{{/inputs}}
        {{^inputs}}<tr><td class="empty">none</td></tr>{{/inputs}}</tbody></table></section>
        <section><h2>Outputs</h2><table class="list" id="outputs"><tbody>{{#outputs}}<tr><td>{{slot}}</td><td><a class="mono" href="/artifacts/{{id}}">{{id}}</a></td><td>{{typeName}}</td><td class="num">{{size}}</td></tr>{{/outputs}}
        {{^outputs}}<tr><td class="empty">none</td></tr>{{/outputs}}</tbody></table></section>
        {{#hasMetrics}}<section><h2>Metrics</h2><table class="list" id="metrics"><thead><tr><th>Metric</th><th class="num">Last value</th><th class="num">Points</th></tr></thead><tbody>
        {{#metrics}}<tr data-metric="{{name}}"><td>{{name}}</td><td class="num">{{value}}</td><td class="num">{{points}}</td></tr>{{/metrics}}</tbody></table></section>{{/hasMetrics}}
        {{#hasProperties}}<section><h2>Properties</h2><dl class="facts">{{#properties}}<dt>{{key}}</dt><dd>{{value}}</dd>{{/properties}}</dl></section>{{/hasProperties}}
        <section><h2>Log</h2>{{#log}}<p class="meta">{{logNote}} <a href="/runs/{{runID}}/steps/{{name}}/log">whole log</a></p><pre class="log" id="log">{{log}}</pre>{{/log}}
        {{^log}}<p class="empty" id="log">This step run wrote no log.</p>{{/log}}</section>
        {{/content}}{{/layout}}
        """

    static let artifact = """
        {{<layout}}{{$content}}
        <h1>Artifact {{name}} <span class="mono small">{{id}}</span></h1>
        <p class="actions"><a class="button" href="/artifacts/{{id}}/download">Download</a>
        <a class="button" href="/artifacts/{{id}}/lineage">Lineage</a></p>
        <dl class="facts"><dt>Type</dt><dd>{{typeName}}</dd><dt>Content hash</dt><dd class="mono">{{contentHash}}</dd>
        <dt>Size</dt><dd>{{size}}</dd><dt>URI</dt><dd class="mono">{{uri}}</dd><dt>Materializer</dt><dd>{{materializer}}</dd>
        <dt>Created</dt><dd>{{created}}</dd>
        {{#producer}}<dt>Produced by</dt><dd><a href="/runs/{{runID}}/steps/{{stepName}}">{{stepName}}</a> in run <a class="mono" href="/runs/{{runID}}">{{runID}}</a></dd>{{/producer}}
        {{#modelVersions}}<dt>Model version</dt><dd><a href="/models/{{model}}">{{label}}</a></dd>{{/modelVersions}}</dl>
        {{#hasProperties}}<section><h2>Properties</h2><dl class="facts">{{#properties}}<dt>{{key}}</dt><dd>{{value}}</dd>{{/properties}}</dl></section>{{/hasProperties}}
        <section><h2>Used by</h2><table class="list" id="consumers"><tbody>{{#consumers}}<tr><td><a href="/runs/{{runID}}/steps/{{stepName}}">{{stepName}}</a></td><td><a class="mono" href="/runs/{{runID}}">{{runID}}</a></td><td><span class="badge {{status}}">{{status}}</span></td></tr>{{/consumers}}
        {{^consumers}}<tr><td class="empty">No step has read it yet.</td></tr>{{/consumers}}</tbody></table></section>
        {{#sandboxed}}<section><h2>{{sandboxTitle}}</h2><iframe class="report" id="report" sandbox="allow-scripts" referrerpolicy="no-referrer" src="/artifacts/{{id}}/view" title="{{sandboxTitle}}"></iframe></section>{{/sandboxed}}
        {{#table}}<section><h2>Schema</h2><table class="list" id="schema"><thead><tr><th>Column</th><th>Type</th></tr></thead><tbody>{{#schema}}<tr><td>{{name}}</td><td>{{type}}</td></tr>{{/schema}}</tbody></table>
        <h2>First rows <span class="meta">({{shown}} of {{totalRows}})</span></h2><div class="scroll"><table class="list data" id="rows"><thead><tr>{{#columns}}<th>{{.}}</th>{{/columns}}</tr></thead>
        <tbody>{{#rows}}<tr>{{#.}}<td>{{.}}</td>{{/.}}</tr>{{/rows}}</tbody></table></div></section>{{/table}}
        {{#anomalies}}<section><h2>Validation: {{verdict}}</h2>{{#reference}}<p class="meta">checked against {{reference}}</p>{{/reference}}
        <table class="list" id="anomalies"><thead><tr><th>Column</th><th>Anomaly</th><th>Found</th></tr></thead><tbody>
        {{#items}}<tr class="bad"><td>{{column}}</td><td>{{kind}}</td><td>{{description}}</td></tr>{{/items}}{{^items}}<tr><td colspan="3" class="empty">No anomalies.</td></tr>{{/items}}</tbody></table>
        {{#hasDrift}}<h3>Drift by column</h3><table class="list" id="drift"><tbody>{{#drift}}<tr><td>{{key}}</td><td class="num">{{value}}</td></tr>{{/drift}}</tbody></table>{{/hasDrift}}</section>{{/anomalies}}
        {{#json}}<section><h2>Content</h2><pre class="code">{{json}}</pre></section>{{/json}}
        {{/content}}{{/layout}}
        """

    static let lineage = """
        {{<layout}}{{$content}}
        <p class="crumbs"><a href="/artifacts/{{id}}">artifact {{name}}</a> ›</p>
        <h1>Lineage of {{name}}</h1>
        <p class="meta">Everything it was made from (left) and everything made from it (right), across runs. Drag to pan,
        scroll to zoom; click a box to open it.</p>
        <div class="graph-frame tall">{{{graph}}}</div>
        {{/content}}{{/layout}}
        """

    static let models = """
        {{<layout}}{{$content}}
        <h1>Models</h1>
        <table class="list" id="models"><thead><tr><th>Model</th><th class="num">Versions</th><th class="num">Latest</th><th>Production</th><th>Staging</th></tr></thead><tbody>
        {{#models}}<tr data-model="{{name}}"><td><a href="/models/{{name}}">{{name}}</a></td><td class="num">{{versions}}</td><td class="num">{{latestVersion}}</td>
        <td>{{#productionVersion}}v{{.}}{{/productionVersion}}</td><td>{{#stagingVersion}}v{{.}}{{/stagingVersion}}</td></tr>{{/models}}
        {{^models}}<tr><td colspan="5" class="empty">No registered models. A pipeline's register step adds them.</td></tr>{{/models}}</tbody></table>
        {{/content}}{{/layout}}
        """

    static let model = """
        {{<layout}}{{$content}}
        <p class="crumbs"><a href="/models">models</a> ›</p>
        <h1>Model {{name}}</h1>
        <p class="meta">Metrics from each version's evaluation; size, load time, memory, single-row latency and batch throughput from its profile (<code>sluice profile {{name}}@VERSION</code>; – when not profiled yet).</p>
        {{#notice}}<p class="notice">{{notice}}</p>{{/notice}}
        <div class="scroll"><table class="list nowrap" id="versions"><thead><tr><th>Version</th><th>Stage</th><th>Registered</th><th>By</th><th>Run</th>
        {{#metricNames}}<th class="num">{{.}}</th>{{/metricNames}}<th class="num">Size</th><th class="num">Load ms</th><th class="num">Memory</th><th class="num">p50 µs</th><th class="num">p99 µs</th><th class="num">Rows/s</th><th></th></tr></thead><tbody>
        {{#versions}}<tr id="v{{version}}" data-version="{{version}}" data-stage="{{stage}}"><td><a href="/artifacts/{{artifactID}}">v{{version}}</a></td><td><span class="badge stage-{{stage}}">{{stage}}</span></td>
        <td>{{created}}</td><td>{{createdBy}}</td><td>{{#runID}}<a class="mono" href="/runs/{{.}}" title="{{.}}">…{{short}}</a>{{/runID}}</td>
        {{#metrics}}<td class="num{{#best}} best{{/best}}">{{value}}</td>{{/metrics}}<td class="num">{{size}}</td><td class="num">{{load}}</td><td class="num">{{memory}}</td><td class="num">{{p50}}</td><td class="num">{{p99}}</td><td class="num">{{throughput}}</td>
        <td><form method="post" action="/models/{{model}}/versions/{{version}}/stage" class="inline stage-form">
        <select name="stage" aria-label="stage">{{#stages}}<option value="{{.}}">{{.}}</option>{{/stages}}</select>
        <input type="hidden" name="expected_production" value="{{expectedProduction}}"><input type="hidden" name="expected_stage" value="{{stage}}">
        <input name="reason" placeholder="why" required size="12"><button type="submit">Move</button></form>
        <a href="/artifacts/{{artifactID}}/lineage">lineage</a></td></tr>{{/versions}}</tbody></table></div>
        {{#hasProduction}}<form method="post" action="/models/{{name}}/rollback" class="inline" id="rollback-form">
        <input type="hidden" name="expected_production" value="{{expectedProduction}}">
        <input name="reason" placeholder="why roll back" required size="24"><button class="danger" type="submit">Roll back production</button></form>{{/hasProduction}}
        <section><h2>Stage history</h2><table class="list" id="history"><thead><tr><th>When</th><th>Version</th><th>From</th><th>To</th><th>Who</th><th>Why</th></tr></thead><tbody>
        {{#history}}<tr><td>{{at}}</td><td>v{{version}}</td><td>{{from}}</td><td>{{to}}</td><td>{{by}}</td><td>{{reason}}</td></tr>{{/history}}
        {{^history}}<tr><td colspan="6" class="empty">No stage changes yet.</td></tr>{{/history}}</tbody></table></section>
        {{#card}}<section><h2>Model card (v{{version}})</h2><iframe class="report" id="card" sandbox referrerpolicy="no-referrer" src="/artifacts/{{artifactID}}/view" title="model card"></iframe></section>{{/card}}
        {{/content}}{{/layout}}
        """

    static let compare = """
        {{<layout}}{{$content}}
        <h1>Compare runs</h1>
        {{^columns}}<p class="meta">Choose two or more runs.</p><form method="get" action="/compare"><table class="list" id="pick"><tbody>
        {{#recent}}<tr><td><input type="checkbox" name="runs" value="{{id}}" aria-label="compare {{id}}"></td><td class="mono">{{id}}</td><td>{{pipeline}}</td><td><span class="badge {{status}}">{{status}}</span></td><td>{{started}}</td></tr>{{/recent}}
        </tbody></table><p class="actions"><button type="submit">Compare</button></p></form>{{/columns}}
        {{#hasColumns}}<table class="list" id="comparison"><thead><tr><th></th>{{#columns}}<th><a class="mono" href="/runs/{{id}}">{{id}}</a><br><span class="badge {{status}}">{{status}}</span></th>{{/columns}}</tr></thead><tbody>
        <tr class="section"><th colspan="{{span}}">Parameters {{^showAll}}(those that differ; <a href="{{allLink}}">show all</a>){{/showAll}}</th></tr>
        {{#parameters}}<tr data-key="{{key}}" class="{{#differs}}differs{{/differs}}"><th>{{key}}</th>{{#values}}<td>{{.}}</td>{{/values}}</tr>{{/parameters}}
        <tr class="section"><th colspan="{{span}}">Metrics</th></tr>
        {{#metrics}}<tr data-key="{{key}}" class="{{#differs}}differs{{/differs}}"><th>{{key}}</th>{{#values}}<td class="num">{{.}}</td>{{/values}}</tr>{{/metrics}}
        </tbody></table>
        {{#charts}}<section class="chart-box"><h2>{{name}}</h2>{{{svg}}}</section>{{/charts}}{{/hasColumns}}
        {{/content}}{{/layout}}
        """

    static let datasets = """
        {{<layout}}{{$content}}
        <h1>Datasets</h1>
        <p class="meta">Every dataset version an ingest step has seen (the hash of its files' contents), with the runs and models that used it.</p>
        <table class="list" id="datasets"><thead><tr><th>Version</th><th>First seen</th><th class="num">Rows</th><th>Columns</th><th>Statistics</th><th>Runs</th><th>Models</th></tr></thead><tbody>
        {{#datasets}}<tr data-dataset="{{version}}"><td><a class="mono" href="/artifacts/{{artifactID}}">{{short}}</a></td><td>{{firstSeen}}</td><td class="num">{{rows}}</td><td>{{columns}}</td>
        <td>{{#statisticsArtifact}}<a href="/artifacts/{{.}}">statistics</a>{{/statisticsArtifact}}</td>
        <td>{{#runs}}<a class="mono" href="/runs/{{.}}">{{.}}</a> {{/runs}}</td><td>{{#models}}<a href="/models/{{name}}">{{label}}</a> {{/models}}</td></tr>{{/datasets}}
        {{^datasets}}<tr><td colspan="7" class="empty">No dataset versions yet: run a pipeline with an ingest step.</td></tr>{{/datasets}}</tbody></table>
        {{/content}}{{/layout}}
        """

    static let features = """
        {{<layout}}{{$content}}
        <h1>Features</h1>
        <p class="meta">The feature store: definitions applied from features.yaml (<code>sluice features apply</code>), each view's last materialization into the online store, and the training sets joined from services with the models trained on them.</p>
        <h2>Definitions</h2>
        <table class="list" id="definitions"><thead><tr><th>Kind</th><th>Name</th><th>Version</th><th>Applied</th><th>By</th><th>Versions over time</th></tr></thead><tbody>
        {{#definitions}}<tr data-definition="{{kind}}/{{name}}"><td>{{kind}}</td><td>{{name}}</td><td class="mono">{{version}}</td><td><a href="/runs/{{runID}}">{{appliedAt}}</a></td><td>{{appliedBy}}</td><td class="mono">{{history}}</td></tr>{{/definitions}}
        {{^definitions}}<tr><td colspan="6" class="empty">No feature definitions applied yet: write features.yaml, then <code>sluice features apply</code>.</td></tr>{{/definitions}}</tbody></table>
        <h2>Freshness</h2>
        <table class="list" id="freshness"><thead><tr><th>View</th><th>Watermark</th><th>Materialized</th><th class="num">Entities written</th><th>Online store</th></tr></thead><tbody>
        {{#materializations}}<tr data-view="{{view}}"><td>{{view}}</td><td>{{watermark}}</td><td><a href="/runs/{{runID}}">{{at}}</a></td><td class="num">{{rows}}</td><td class="mono">{{store}}</td></tr>{{/materializations}}
        {{^materializations}}<tr><td colspan="5" class="empty">Nothing materialized yet: <code>sluice features materialize</code>.</td></tr>{{/materializations}}</tbody></table>
        <h2>Training sets</h2>
        <table class="list" id="training-sets"><thead><tr><th>Training set</th><th>Run</th><th>Service</th><th>Views</th><th>Sources</th><th>Models</th></tr></thead><tbody>
        {{#trainingSets}}<tr data-artifact="{{artifactID}}"><td><a class="mono" href="/artifacts/{{artifactID}}">{{artifactID}}</a><br><span class="meta">{{createdAt}}</span></td><td><a class="mono" href="/runs/{{runID}}">{{runID}}</a> ({{pipeline}})</td>
        <td>{{#service}}{{name}} <span class="mono">{{version}}</span>{{/service}}</td><td>{{#views}}{{name}} <span class="mono">{{version}}</span><br>{{/views}}</td><td>{{#sources}}{{name}} <span class="mono">{{version}}</span><br>{{/sources}}</td>
        <td>{{#models}}<a href="/models/{{name}}">{{label}}</a> {{/models}}</td></tr>{{/trainingSets}}
        {{^trainingSets}}<tr><td colspan="6" class="empty">No training sets yet: a pipeline's <code>feature_join</code> step makes one.</td></tr>{{/trainingSets}}</tbody></table>
        {{/content}}{{/layout}}
        """

    static let message = """
        {{<layout}}{{$content}}
        <h1>{{heading}}</h1><p class="message">{{text}}</p><p><a href="{{back}}">{{backLabel}}</a></p>
        {{/content}}{{/layout}}
        """

    static let login = """
        {{<layout}}{{$content}}
        <h1>Sign in</h1>
        <p class="message">{{text}}</p>
        <form method="post" action="/login" class="login"><label>Access token <input type="password" name="token" autocomplete="off" required size="50"></label>
        <input type="hidden" name="next" value="{{next}}"><button type="submit">Sign in</button></form>
        <p class="meta">Create a token on the machine with the project: <code>sluice tokens create NAME</code> (add <code>--write</code> to promote and roll back).</p>
        {{/content}}{{/layout}}
        """

}
