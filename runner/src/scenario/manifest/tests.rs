use std::path::Path;

use rsslab_wire::pod::{Resources, RestartPolicy};
use rsslab_wire::units::Bytes;

use super::*;

const MI: u64 = 1024 * 1024;

fn fixture(name: &str) -> (String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests")
        .join(name);
    let source = std::fs::read_to_string(&path).unwrap();
    (path.display().to_string(), source)
}

fn read(source: &str) -> Manifest {
    read_manifest(Path::new("app.yaml"), source).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors.iter().map(ToString::to_string).collect::<String>()
        )
    })
}

fn errors(source: &str) -> Vec<Diagnostic> {
    match read_manifest(Path::new("app.yaml"), source) {
        Ok(manifest) => panic!("read without error: {manifest:#?}"),
        Err(errors) => errors,
    }
}

/// The only error of `source`, with its line, column and key.
fn one_error(source: &str) -> (usize, usize, String, Diagnostic) {
    let errors = errors(source);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let error = errors.into_iter().next().unwrap();
    assert!(!error.is_warning());
    (error.line, error.column, error.key.clone(), error)
}

/// A Deployment around a pod spec written at its indentation (eight spaces).
fn deployment(pod_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    \
         spec:\n{pod_spec}"
    )
}

fn resources(memory: Option<u64>, cpu_millis: Option<u64>) -> Resources {
    Resources {
        memory: memory.map(Bytes),
        cpu_millis,
    }
}

#[test]
fn a_pod_is_read_with_its_uid_priority_and_overhead() {
    let source = "apiVersion: v1
kind: Pod
metadata:
  name: agent
  uid: 0c1f3c1e-7c2a-4d8e-9b1a-3f6d2e5a7b90
spec:
  priorityClassName: system-node-critical
  restartPolicy: Never
  overhead:
    memory: 120Mi
  containers:
    - name: api
      command: [/bin/agent, --once]
      env:
        - name: MODE
          value: batch
        - name: EMPTY
      resources:
        requests:
          memory: 0
        limits:
          memory: 128Mi
          cpu: 500m
";
    let manifest = read(source);
    assert!(manifest.warnings.is_empty(), "{:#?}", manifest.warnings);
    let [pod] = &manifest.pods[..] else {
        panic!("{:#?}", manifest.pods)
    };
    assert_eq!(pod.object, "Pod/agent");
    assert_eq!(pod.pod.name, "agent");
    assert_eq!(pod.pod.uid, "0c1f3c1e-7c2a-4d8e-9b1a-3f6d2e5a7b90");
    assert_eq!(pod.pod.restart_policy, RestartPolicy::Never);
    assert_eq!(
        pod.pod.priority_class_name.as_deref(),
        Some("system-node-critical")
    );
    // system-cluster-critical's 2000000000, and 1000 more for the node's.
    assert_eq!(pod.pod.priority, 2_000_001_000);
    assert_eq!(pod.pod.overhead, Some(Bytes(120 * MI)));
    let api = &pod.pod.containers[0];
    // printf '%s' 0c1f3c1e-7c2a-4d8e-9b1a-3f6d2e5a7b90/api | sha256sum
    assert_eq!(
        api.id,
        "befc45fc54db86fdc0ca612bdfb1e2c5b33dc0d1057bb04c1d8ba3c76102a960"
    );
    // An explicit request of 0 is kept; the cpu request is its limit.
    assert_eq!(api.requests, resources(Some(0), Some(500)));
    assert_eq!(api.limits, resources(Some(128 * MI), Some(500)));
    assert!(!api.sidecar);
    let program = &pod.programs["api"];
    assert_eq!(
        program.command,
        Some(vec!["/bin/agent".to_string(), "--once".to_string()])
    );
    assert_eq!(program.args, None);
    assert_eq!(
        program.env,
        [
            ("MODE".to_string(), "batch".to_string()),
            ("EMPTY".to_string(), String::new())
        ]
    );
    // The document, from `apiVersion` to the last value (`500m`).
    assert_eq!(&source[pod.span.clone()], source.trim_end());
}

#[test]
fn a_deployment_as_projects_write_it() {
    let (path, source) = fixture("web-deployment.yaml");
    let manifest = read_manifest(Path::new(&path), &source).unwrap();
    let [web] = &manifest.pods[..] else {
        panic!("{:#?}", manifest.pods)
    };
    assert_eq!(web.object, "Deployment/web");
    let pod = &web.pod;
    assert_eq!(pod.name, "web");
    // printf '%s' shop/Deployment/web | sha256sum: 84b75d055c99349cd01f0c1a1f96bf61..., with
    // the version nibble set to 4 (34 -> 44) and the variant bits to 10 (d0 -> 90).
    assert_eq!(pod.uid, "84b75d05-5c99-449c-901f-0c1a1f96bf61");
    assert_eq!(pod.restart_policy, RestartPolicy::Always);
    assert_eq!(pod.priority_class_name.as_deref(), Some("shop-high"));
    assert_eq!(
        pod.priority, 0,
        "a class of the cluster's own: unknown here"
    );
    assert_eq!(pod.overhead, None);

    let [shipper] = &pod.init_containers[..] else {
        panic!("{:#?}", pod.init_containers)
    };
    assert_eq!(shipper.name, "log-shipper");
    assert!(shipper.sidecar);
    // Limits only: the requests are the limits, 64Mi = 67108864 bytes and 100m.
    assert_eq!(shipper.limits, resources(Some(67_108_864), Some(100)));
    assert_eq!(shipper.requests, shipper.limits);

    let [api] = &pod.containers[..] else {
        panic!("{:#?}", pod.containers)
    };
    assert_eq!(api.name, "api");
    assert!(!api.sidecar);
    // 256Mi = 268435456, 512Mi = 536870912; cpu "1" (quoted) is 1000 millicores.
    assert_eq!(api.requests, resources(Some(268_435_456), Some(250)));
    assert_eq!(api.limits, resources(Some(536_870_912), Some(1000)));
    assert_eq!(api.id.len(), 64);
    assert_ne!(api.id, shipper.id);

    let program = &web.programs["api"];
    assert_eq!(program.command, Some(vec!["/app/web".to_string()]));
    assert_eq!(
        program.args,
        Some(vec!["--listen".to_string(), ":8080".to_string()])
    );
    assert_eq!(
        program.env,
        [
            ("GOMEMLIMIT".to_string(), "400MiB".to_string()),
            ("LOG_LEVEL".to_string(), "info".to_string())
        ],
        "DB_PASSWORD comes from a Secret: not set"
    );
    assert_eq!(web.programs["log-shipper"].command, None);
    assert_eq!(web.programs.len(), 2);

    let warned: Vec<(String, usize, usize)> = manifest
        .warnings
        .iter()
        .map(|w| (w.key.clone(), w.line, w.column))
        .collect();
    let api = |key: &str| format!("spec.template.spec.containers[0].{key}");
    assert_eq!(
        warned,
        [
            ("metadata.labels".to_string(), 7, 3),
            ("spec.replicas".to_string(), 11, 3),
            ("spec.selector".to_string(), 12, 3),
            ("spec.template.metadata".to_string(), 16, 5),
            (
                "spec.template.spec.initContainers[0].image".to_string(),
                23,
                11
            ),
            (api("image"), 32, 11),
            (api("ports"), 35, 11),
            (api("env[2].valueFrom"), 44, 15),
            (api("readinessProbe"), 48, 11),
            (api("livenessProbe"), 53, 11),
        ]
    );
    let warnings = &manifest.warnings;
    assert!(
        warnings
            .iter()
            .all(|w| w.is_warning() && w.file == Path::new(&path))
    );
    assert_eq!(
        warnings[5].message,
        "`spec.template.spec.containers[0].image` is not used: the lab runs the program the \
         scenario names for container `api`"
    );
    assert_eq!(
        warnings[1].message,
        "`spec.replicas` is 3: the lab runs one pod of `Deployment/web`"
    );
    assert!(
        warnings[7]
            .message
            .contains("`DB_PASSWORD` is not set in the lab"),
        "{}",
        warnings[7].message
    );
    assert!(
        warnings[2].to_string().contains("12 |   selector:"),
        "{}",
        warnings[2]
    );
}

#[test]
fn statefulset_daemonset_job_and_cronjob_templates_are_read() {
    let container = "containers: [{name: app, resources: {limits: {memory: 64Mi}}}]";
    let cases = [
        (
            format!(
                "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: db}}\nspec:\n  \
                 serviceName: db\n  replicas: 1\n  template:\n    spec:\n      {container}\n"
            ),
            "StatefulSet/db",
            RestartPolicy::Always,
            1,
        ),
        (
            format!(
                "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: node-agent}}\nspec:\n  \
                 template:\n    spec:\n      {container}\n"
            ),
            "DaemonSet/node-agent",
            RestartPolicy::Always,
            0,
        ),
        (
            format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: migrate}}\nspec:\n  \
                 backoffLimit: 2\n  template:\n    spec:\n      restartPolicy: Never\n      \
                 {container}\n"
            ),
            "Job/migrate",
            RestartPolicy::Never,
            1,
        ),
        (
            format!(
                "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: report}}\nspec:\n  \
                 schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        \
                 spec:\n          restartPolicy: OnFailure\n          {container}\n"
            ),
            "CronJob/report",
            RestartPolicy::OnFailure,
            1,
        ),
    ];
    for (source, object, restart_policy, warnings) in cases {
        let manifest = read(&source);
        let [pod] = &manifest.pods[..] else {
            panic!("{source}: {:#?}", manifest.pods)
        };
        assert_eq!(pod.object, object);
        assert_eq!(pod.pod.restart_policy, restart_policy, "{source}");
        let app = &pod.pod.containers[0];
        assert_eq!(app.limits.memory, Some(Bytes(64 * MI)), "{source}");
        assert_eq!(app.requests.memory, Some(Bytes(64 * MI)), "{source}");
        // serviceName, backoffLimit, schedule: one warning each; `replicas: 1` is what the lab
        // runs.
        assert_eq!(
            manifest.warnings.len(),
            warnings,
            "{:#?}",
            manifest.warnings
        );
    }
}

#[test]
fn a_multi_document_file_gives_its_workloads_pods() {
    let (path, source) = fixture("shop.yaml");
    let manifest = read_manifest(Path::new(&path), &source).unwrap();
    let objects: Vec<&str> = manifest.pods.iter().map(|p| p.object.as_str()).collect();
    assert_eq!(objects, ["Deployment/web", "Deployment/worker"]);
    let not_workloads: Vec<(&str, usize)> = manifest
        .warnings
        .iter()
        .filter(|w| w.message.starts_with("rsslab runs pods"))
        .map(|w| (w.message.as_str(), w.line))
        .collect();
    assert_eq!(
        not_workloads,
        [
            ("rsslab runs pods; this Service is not used", 17),
            ("rsslab runs pods; this ConfigMap is not used", 27)
        ]
    );
    let selectors: Vec<usize> = manifest
        .warnings
        .iter()
        .filter(|w| w.key == "spec.selector")
        .map(|w| w.line)
        .collect();
    assert_eq!(selectors, [7, 38]);
    assert_eq!(manifest.warnings.len(), 4, "{:#?}", manifest.warnings);

    let web = &manifest.pods[0].pod.containers[0];
    // 1G is decimal: 10^9 bytes; the request defaults to it.
    assert_eq!(web.limits, resources(Some(1_000_000_000), None));
    assert_eq!(web.requests, web.limits);
    let worker = &manifest.pods[1].pod.containers[0];
    // 0.5Gi = 512Mi = 536870912; 500m; `cpu: 2` (a YAML integer) is 2000 millicores.
    assert_eq!(worker.requests, resources(Some(536_870_912), Some(500)));
    assert_eq!(worker.limits, resources(None, Some(2000)));

    // Each pod's span is its document: from `apiVersion` to its last value.
    let web_span = &manifest.pods[0].span;
    assert!(source[web_span.clone()].starts_with("apiVersion: apps/v1\nkind: Deployment"));
    assert!(source[web_span.clone()].ends_with("limits: {memory: 1G"));
    let worker_text = &source[manifest.pods[1].span.clone()];
    assert!(
        worker_text.starts_with("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: worker")
    );
    assert!(worker_text.ends_with("limits: {cpu: 2"), "{worker_text}");
}

#[test]
fn quantities_are_read_as_kubernetes_reads_them() {
    let manifest = read(&deployment(
        "      containers:
        - name: a
          resources:
            limits: {memory: 1G, cpu: 2}
        - name: b
          resources:
            requests: {memory: 0.5Gi, cpu: 0.25}
",
    ));
    let containers = &manifest.pods[0].pod.containers;
    // 1G = 10^9 bytes; `cpu: 2` = 2 cores = 2000m.
    assert_eq!(
        containers[0].limits,
        resources(Some(1_000_000_000), Some(2000))
    );
    // 0.5Gi = 2^29 = 536870912; 0.25 cores = 250m.
    assert_eq!(
        containers[1].requests,
        resources(Some(536_870_912), Some(250))
    );
    assert_eq!(containers[1].limits, resources(None, None));
}

#[test]
fn requests_above_limits_are_refused_per_resource() {
    let (line, column, key, error) = one_error(&deployment(
        "      containers:
        - name: c
          resources:
            requests: {memory: 1.5Gi, cpu: 1500m}
            limits: {memory: 129M, cpu: \"2.5\"}
",
    ));
    // 1.5Gi = 1610612736 bytes > 129M = 129000000 bytes; 1500m < 2.5 cores: only memory.
    assert_eq!(
        (line, column, key.as_str()),
        (
            11,
            32,
            "spec.template.spec.containers[0].resources.requests.memory"
        )
    );
    assert_eq!(
        error.label.as_deref(),
        Some("1.5Gi: must be less than or equal to memory limit of 129M")
    );
    let (line, column, key, _) = one_error(&deployment(
        "      containers:
        - name: c
          resources:
            requests:
              cpu: \"2\"
            limits:
              cpu: 1500m
",
    ));
    assert_eq!(
        (line, column, key.as_str()),
        (
            12,
            20,
            "spec.template.spec.containers[0].resources.requests.cpu"
        )
    );
}

#[test]
fn a_bad_or_negative_quantity_is_an_error_with_the_fix() {
    let (line, column, key, error) = one_error(&deployment(
        "      containers:
        - name: c
          resources:
            limits:
              memory: 128MB
",
    ));
    assert_eq!(
        (line, column, key.as_str()),
        (
            12,
            23,
            "spec.template.spec.containers[0].resources.limits.memory"
        )
    );
    assert_eq!(
        error.message,
        "invalid quantity for `spec.template.spec.containers[0].resources.limits.memory`"
    );
    assert_eq!(error.help, ["write e.g. 128Mi (binary) or 128M (decimal)"]);

    let (line, column, key, error) = one_error(&deployment(
        "      containers:
        - name: c
          resources:
            requests: {cpu: -500m}
",
    ));
    assert_eq!(
        (line, column, key.as_str()),
        (
            11,
            29,
            "spec.template.spec.containers[0].resources.requests.cpu"
        )
    );
    assert_eq!(
        error.label.as_deref(),
        Some("`-500m`: must be greater than or equal to 0")
    );
    assert!(error.help[0].contains("500m"), "{error:?}");
}

#[test]
fn yaml_syntax_errors_are_one_error_at_their_place() {
    let (line, column, key, error) = one_error(
        "apiVersion: v1
kind: Pod
metadata:
  name: a
   bad: x
",
    );
    assert_eq!((line, column, key.as_str()), (5, 7, ""));
    assert!(
        error.message.starts_with("invalid YAML: mapping values"),
        "{error:?}"
    );
    assert!(error.help[0].contains("indentation"), "{error:?}");

    let (line, column, _, error) = one_error("kind: Pod\nkind: Job\n");
    assert_eq!((line, column), (2, 1));
    assert_eq!(error.message, "invalid YAML: duplicate mapping key: kind");
}

#[test]
fn unknown_kinds_and_old_api_versions_are_errors_with_the_fix() {
    let (line, column, key, error) =
        one_error("apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: web}\n");
    assert_eq!((line, column, key.as_str()), (2, 7, "kind"));
    assert_eq!(error.message, "unknown kind `Deploymnet`");
    assert!(
        error.help[0].starts_with("did you mean `Deployment`?"),
        "{error:?}"
    );

    let (line, column, key, error) =
        one_error("apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: web}\n");
    assert_eq!((line, column, key.as_str()), (1, 13, "apiVersion"));
    assert_eq!(
        error.help[0].split(',').next(),
        Some("write `apiVersion: apps/v1`")
    );

    // A custom resource that happens to be called Job is just another object.
    let manifest = read(
        "apiVersion: batch.volcano.sh/v1alpha1\nkind: Job\nmetadata: {name: x}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c}]}\n",
    );
    assert_eq!(manifest.pods.len(), 1);
    assert_eq!(
        manifest.warnings[0].message,
        "rsslab runs pods; this Job is not used"
    );
}

#[test]
fn pod_spec_mistakes_are_errors_at_their_place() {
    // Container names are unique across init containers and containers.
    let (line, column, key, _) = one_error(&deployment(
        "      initContainers:
        - name: app
          restartPolicy: Always
      containers:
        - name: app
",
    ));
    assert_eq!(
        (line, column, key.as_str()),
        (12, 17, "spec.template.spec.containers[0].name")
    );

    let (line, column, key, error) = one_error(&deployment("      containers: []\n"));
    assert_eq!(
        (line, column, key.as_str()),
        (8, 19, "spec.template.spec.containers")
    );
    assert_eq!(error.message, "the pod has no containers");

    // No containers key at all: at the pod spec's first key.
    let (line, column, _, _) = one_error(&deployment("      priority: 5\n"));
    assert_eq!((line, column), (7, 5), "at the pod spec's key");

    let (line, column, key, error) = one_error(&deployment(
        "      resources:
        limits: {memory: 1Gi}
      containers: [{name: app}]
",
    ));
    assert_eq!(
        (line, column, key.as_str()),
        (8, 7, "spec.template.spec.resources")
    );
    assert_eq!(
        error.message,
        "rsslab does not model pod-level resources yet"
    );
    assert!(error.help[0].starts_with("put the requests and limits on the containers"));

    let (line, column, key, _) = one_error(&deployment(
        "      initContainers:
        - name: setup
          restartPolicy: OnFailure
      containers: [{name: app}]
",
    ));
    assert_eq!(
        (line, column, key.as_str()),
        (10, 26, "spec.template.spec.initContainers[0].restartPolicy")
    );

    let (line, column, key, error) = one_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  restartPolicy: Sometimes\n  \
         containers: [{name: app}]\n",
    );
    assert_eq!((line, column, key.as_str()), (5, 18, "spec.restartPolicy"));
    assert_eq!(error.help, ["expected one of Always, OnFailure, Never"]);

    let (line, column, key, error) = one_error(&deployment("      containers: [{name: Api}]\n"));
    assert_eq!(
        (line, column, key.as_str()),
        (8, 27, "spec.template.spec.containers[0].name")
    );
    assert_eq!(error.help, ["write e.g. `name: api`"]);
}

#[test]
fn a_job_pod_must_end_and_a_deployment_pod_must_not() {
    let (line, column, key, _) = one_error(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    \
         spec:\n      containers: [{name: app}]\n",
    );
    assert_eq!(
        (line, column, key.as_str()),
        (6, 5, "spec.template.spec.restartPolicy")
    );
    let (line, _, key, _) = one_error(&deployment(
        "      restartPolicy: Never\n      containers: [{name: app}]\n",
    ));
    assert_eq!(
        (line, key.as_str()),
        (8, "spec.template.spec.restartPolicy")
    );
}

#[test]
fn object_mistakes_are_errors_at_their_place() {
    let (line, column, key, error) = one_error(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  labels: {app: web}\nspec:\n  \
         template:\n    spec:\n      containers: [{name: app}]\n",
    );
    assert_eq!((line, column, key.as_str()), (3, 1, "metadata.name"));
    assert_eq!(error.message, "the Deployment has no `metadata.name`");

    // A value of the wrong type is named by its path.
    let (line, column, key, error) = one_error(&deployment("      containers: \"x\"\n"));
    assert_eq!(
        (line, column, key.as_str()),
        (8, 19, "spec.template.spec.containers")
    );
    assert_eq!(
        error.message,
        "invalid value for `spec.template.spec.containers`"
    );
    assert_eq!(
        error.label.as_deref(),
        Some("invalid type: string \"x\", expected a list")
    );
    let (_, _, key, error) = one_error(&deployment(
        "      containers:\n        - name: app\n          env: [{name: A, value: 3}]\n",
    ));
    assert_eq!(key, "spec.template.spec.containers[0].env[0].value");
    assert!(error.help[0].contains("in quotes"), "{error:?}");

    let (line, column, key, _) = one_error(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n",
    );
    assert_eq!((line, column, key.as_str()), (4, 1, "spec.template.spec"));

    let errors = errors(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n---\n\
         apiVersion: batch/v1\nkind: Job\nmetadata: {name: a}\nspec: {template: {spec: \
         {restartPolicy: Never, containers: [{name: c}]}}}\n",
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "two pods named `a`: Pod/a and Job/a");
    assert_eq!(errors[0].line, 8);
}

#[test]
fn a_file_without_a_workload_is_an_error() {
    let (line, column, key, error) = one_error(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n",
    );
    assert_eq!((line, column, key.as_str()), (1, 1, ""));
    assert_eq!(error.message, "no workload in the manifest");
    let (_, _, _, error) = one_error("# nothing here yet\n---\n");
    assert_eq!(error.message, "the manifest is empty: no workload in it");
}

#[test]
fn pod_uids_and_container_ids_are_derived_deterministically() {
    let uid = names::derived_pod_uid(None, "Deployment", "web");
    // printf '%s' default/Deployment/web | sha256sum: d60082d1b204e6e067e438b25667cd83...,
    // version nibble 4 (e6 -> 46), variant 10 (67 -> a7).
    assert_eq!(uid, "d60082d1-b204-46e0-a7e4-38b25667cd83");
    assert_eq!(
        uid,
        names::derived_pod_uid(Some("default"), "Deployment", "web")
    );
    assert!(names::is_uuid(&uid));
    let others = [
        names::derived_pod_uid(Some("shop"), "Deployment", "web"),
        names::derived_pod_uid(None, "StatefulSet", "web"),
        names::derived_pod_uid(None, "Deployment", "api"),
    ];
    for other in &others {
        assert_ne!(*other, uid);
        assert!(names::is_uuid(other), "{other}");
        assert_eq!(&other[14..15], "4", "{other}");
        assert!("89ab".contains(&other[19..20]), "{other}");
        assert_eq!(other.to_lowercase(), *other);
    }
    let id = names::container_id(&uid, "api");
    assert_eq!(id, names::container_id(&uid, "api"));
    assert_ne!(id, names::container_id(&uid, "sidecar"));
    assert_ne!(id, names::container_id(&others[0], "api"));
    assert!(
        id.len() == 64
            && id
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );

    // A Pod's own uid is kept; one that is not a UUID is refused.
    let pod = |uid: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, uid: {uid}}}\nspec: {{containers: \
             [{{name: c}}]}}\n"
        )
    };
    let manifest = read(&pod("6F9619FF-8B86-D011-B42D-00C04FC964FF"));
    assert_eq!(
        manifest.pods[0].pod.uid,
        "6F9619FF-8B86-D011-B42D-00C04FC964FF"
    );
    let (_, _, key, _) = one_error(&pod("../etc"));
    assert_eq!(key, "metadata.uid");
}

#[test]
fn names_checks_dns_labels() {
    for good in ["a", "web-1", "0ab", &"a".repeat(63)] {
        assert!(names::is_dns_label(good), "{good}");
    }
    for bad in ["", "Web", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
        assert!(!names::is_dns_label(bad), "{bad}");
    }
}

#[test]
fn other_resources_and_unused_keys_are_warned_about_at_the_top_most_key() {
    let manifest = read(&deployment(
        "      containers:
        - name: gpu
          resource: {}
          resources:
            limits:
              memory: 1Gi
              nvidia.com/gpu: 1
          volumeMounts:
            - name: data
              mountPath: /data
",
    ));
    let warned: Vec<(&str, usize)> = manifest
        .warnings
        .iter()
        .map(|w| (w.key.as_str(), w.line))
        .collect();
    assert_eq!(
        warned,
        [
            ("spec.template.spec.containers[0].resource", 10),
            (
                "spec.template.spec.containers[0].resources.limits.\"nvidia.com/gpu\"",
                14
            ),
            ("spec.template.spec.containers[0].volumeMounts", 15),
        ]
    );
    assert_eq!(manifest.warnings[0].help, ["did you mean `resources`?"]);
}

#[test]
fn no_field_of_the_api_is_taken_for_a_misspelling() {
    // The fields of PodSpec and Container (Kubernetes 1.37) that rsslab does not use, each
    // warned about without a "did you mean".
    let pod_fields = "activeDeadlineSeconds affinity automountServiceAccountToken dnsConfig \
        dnsPolicy enableServiceLinks ephemeralContainers evictionResponders hostAliases hostIPC \
        hostNetwork hostPID hostUsers hostname hostnameOverride imagePullSecrets nodeName \
        nodeSelector os preemptionPolicy readinessGates resourceClaims runtimeClassName \
        schedulerName schedulingGates schedulingGroup securityContext serviceAccount \
        serviceAccountName setHostnameAsFQDN shareProcessNamespace subdomain \
        terminationGracePeriodSeconds tolerations topologySpreadConstraints volumes";
    let container_fields = "envFrom image imagePullPolicy lifecycle livenessProbe ports \
        readinessProbe resizePolicy restartPolicy restartPolicyRules securityContext \
        startupProbe stdin stdinOnce terminationMessagePath terminationMessagePolicy tty \
        volumeDevices volumeMounts workingDir";
    let keys = |fields: &str, indent: &str| {
        fields
            .split_whitespace()
            .map(|field| format!("{indent}{field}: ~\n"))
            .collect::<String>()
    };
    let source = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n{}  containers:\n    - name: \
         app\n{}",
        keys(pod_fields, "  "),
        keys(container_fields, "      ")
    );
    let manifest = read(&source);
    let fields =
        pod_fields.split_whitespace().count() + container_fields.split_whitespace().count();
    assert_eq!(manifest.warnings.len(), fields);
    for warning in &manifest.warnings {
        assert!(warning.help.is_empty(), "{warning}");
    }
}

#[test]
fn a_name_that_is_no_dns_label_gets_one_in_its_fix() {
    assert_eq!(names::as_dns_label("Big_One"), "big-one");
    assert_eq!(names::as_dns_label("-web.app-"), "web-app");
    assert_eq!(names::as_dns_label("__"), "app");
    assert_eq!(names::as_dns_label(&"x".repeat(70)).len(), 63);
    let (line, column, key, error) = one_error(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: Web.App}\nspec: {containers: [{name: a}]}\n",
    );
    assert_eq!((line, column, key.as_str()), (3, 18, "metadata.name"));
    assert!(error.help[0].ends_with("e.g. `name: web-app`"), "{error:?}");
}

#[test]
fn odd_input_is_an_error_not_a_panic() {
    // Past serde-saphyr's depth budget (64), and just within it: parsed on a thread of its own
    // whose stack holds what a test thread's would not.
    let deep = format!("kind: Pod\nspec: {}1{}\n", "[".repeat(200), "]".repeat(200));
    let nested = format!("kind: Pod\nspec: {}1{}\n", "[".repeat(62), "]".repeat(62));
    let inputs = [
        "",
        "---",
        "[",
        "{}",
        "kind: 1",
        "- 1\n- 2",
        "just text",
        "apiVersion: v1\nkind: Pod\nspec: []",
        "apiVersion: v1\nkind: Pod\nmetadata: []\n",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [null]}\n",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, \
         resources: {limits: {memory: .nan}}}]}\n",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: é}\n",
        "\u{feff}kind: Pod\r\nmetadata:\r\n  name: p\r\n",
        "a: &a [*a]",
        &deep,
        &nested,
    ];
    for input in inputs {
        let errors = errors(input);
        assert!(!errors.is_empty(), "{input:?}");
        for error in &errors {
            assert!(!error.is_warning());
            assert!(error.line >= 1, "{input:?}: {error:?}");
            assert!(error.to_string().starts_with("error: "), "{error}");
        }
    }
}
