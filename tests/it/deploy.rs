//! The deployment files we cannot run here (no Docker engine): docker-compose.yml parses, its
//! services are wired as documented, and the configuration it gives callverify is valid.

use callverify::config::{Config, DEFAULT_TOML, ProviderKind};
use figment::Figment;
use figment::providers::{Format, Toml};
use yaml_rust2::{Yaml, YamlLoader};

const COMPOSE: &str = include_str!("../../docker-compose.yml");
const COMPOSE_CONFIG: &str = include_str!("../../config/compose.toml");
const DOCKERFILE: &str = include_str!("../../Dockerfile");

/// `${VAR:-default}` → `default`, as compose resolves it when VAR is unset.
fn resolve_default(value: &str) -> String {
    match (value.find("${"), value.find(":-"), value.rfind('}')) {
        (Some(start), Some(sep), Some(end)) if start < sep && sep < end => {
            format!(
                "{}{}{}",
                &value[..start],
                &value[sep + 2..end],
                &value[end + 1..]
            )
        }
        _ => value.to_owned(),
    }
}

#[test]
fn compose_runs_redis_and_callverify_with_a_valid_configuration() {
    let docs = YamlLoader::load_from_str(COMPOSE).expect("docker-compose.yml is valid YAML");
    let services = &docs[0]["services"];
    assert!(
        services["redis"]["image"]
            .as_str()
            .unwrap()
            .starts_with("redis:")
    );
    assert!(!services["redis"]["healthcheck"].is_badvalue());
    let cv = &services["callverify"];
    assert_eq!(cv["build"].as_str(), Some("."));
    assert_eq!(
        cv["depends_on"]["redis"]["condition"].as_str(),
        Some("service_healthy")
    );
    let Yaml::Hash(env) = &cv["environment"] else {
        panic!("environment is a mapping")
    };

    // Layer exactly what the container gets: defaults, the mounted file, the environment.
    let mut figment = Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(COMPOSE_CONFIG));
    for (k, v) in env {
        let (k, v) = (k.as_str().unwrap(), resolve_default(v.as_str().unwrap()));
        if let Some(path) = k.strip_prefix("CALLVERIFY__") {
            let dotted = path.to_ascii_lowercase().replace("__", ".");
            figment = figment.merge((dotted, v));
        }
    }
    let config = Config::from_figment(figment).expect("the compose configuration is valid");
    assert_eq!(
        config.provider.kind,
        ProviderKind::Simulator,
        "simulator by default"
    );
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.redis.url.expose(), "redis://redis:6379");
    assert_eq!(config.tenants[0].id.as_str(), "demo");
}

#[test]
fn the_image_is_multi_stage_non_root_and_health_checked() {
    assert_eq!(
        DOCKERFILE.matches("\nFROM ").count() + usize::from(DOCKERFILE.starts_with("FROM ")),
        2
    );
    assert!(DOCKERFILE.contains("COPY --from=build"));
    let user = DOCKERFILE
        .lines()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains("root") && !user.ends_with(" 0"), "{user}");
    assert!(DOCKERFILE.contains("HEALTHCHECK") && DOCKERFILE.contains("/readyz"));
}

#[test]
fn compose_publishes_on_loopback_only_and_keeps_redis_on_disk() {
    let docs = YamlLoader::load_from_str(COMPOSE).unwrap();
    let services = &docs[0]["services"];
    let ports = services["callverify"]["ports"].as_vec().unwrap();
    for port in ports {
        let port = port.as_str().unwrap();
        assert!(
            port.starts_with("127.0.0.1:"),
            "{port} is reachable from other machines"
        );
    }
    let command: Vec<&str> = services["redis"]["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let aof = command.iter().position(|a| *a == "--appendonly").unwrap();
    assert_eq!(command[aof + 1], "yes", "{command:?}");
    assert!(
        !services["redis"]["volumes"].is_badvalue(),
        "AOF needs a volume"
    );
}

#[test]
fn the_image_builds_dependencies_in_their_own_layer_and_pins_packages() {
    // The dependency build comes before the sources are copied in.
    let deps = DOCKERFILE.find("cargo build").unwrap();
    let sources = DOCKERFILE.find("COPY src ").unwrap();
    assert!(
        deps < sources,
        "dependencies are built before the sources arrive"
    );
    assert_eq!(
        DOCKERFILE.matches("cargo build --release --locked").count(),
        2
    );
    // Every apt package is pinned (`name=version`).
    let install = DOCKERFILE.split("apt-get install").nth(1).unwrap();
    let install = install.split("&&").next().unwrap();
    let packages: Vec<&str> = install
        .split_whitespace()
        .filter(|w| !w.starts_with('-') && *w != "\\")
        .collect();
    assert!(!packages.is_empty());
    for package in packages {
        assert!(package.contains('='), "{package} is not pinned");
    }
}
