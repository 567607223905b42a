//! Which scopes lie inside which, for the conflict rule.
//!
//! policy.json applies only the most specific scope that matches an image.
//! A namespace's scope inside a cluster scope would therefore replace the
//! cluster's requirements for the images it matches; such a scope is dropped
//! and reported instead.

/// Whether `outer` matches every image `inner` matches: `outer` is `inner`,
/// or one of the less specific scopes containers/image tries for the images
/// of `inner` (its repository, each parent namespace, `host[:port]`, and the
/// `*.` wildcards of the host without its port). Both are valid scopes.
pub fn contains(outer: &str, inner: &str) -> bool {
    if outer == inner {
        return true;
    }
    if let Some(inner_domain) = inner.strip_prefix("*.") {
        return outer
            .strip_prefix("*.")
            .is_some_and(|outer_domain| is_subdomain(inner_domain, outer_domain));
    }
    let repository = without_tag_or_digest(inner);
    if let Some(outer_domain) = outer.strip_prefix("*.") {
        let host_port = repository.split('/').next().unwrap_or_default();
        let host = host_port.split(':').next().unwrap_or_default();
        return is_subdomain(host, outer_domain);
    }
    repository == outer
        || repository
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `name` is a strict subdomain of `domain` (`a.example.com` of
/// `example.com`), as `*.example.com` matches.
fn is_subdomain(name: &str, domain: &str) -> bool {
    name.strip_suffix(domain)
        .is_some_and(|head| head.ends_with('.') && head.len() > 1)
}

/// A scope's repository: without `@digest`, and without `:tag` (a colon
/// after the last `/`; a colon before any `/` is a port).
fn without_tag_or_digest(scope: &str) -> &str {
    if let Some((name, _)) = scope.split_once('@') {
        return name;
    }
    match scope.rfind('/') {
        Some(slash) => match scope[slash..].find(':') {
            Some(colon) => &scope[..slash + colon],
            None => scope,
        },
        None => scope,
    }
}

#[cfg(test)]
mod tests {
    use super::contains;

    #[test]
    fn containment_follows_policy_json_scope_lookup() {
        let table = [
            ("example.com", "example.com", true),
            ("example.com", "example.com/team", true),
            ("example.com", "example.com/team/app:v1", true),
            ("example.com/team", "example.com/team/app@sha256:0123", true),
            ("example.com/team/app", "example.com/team/app:v1", true),
            ("example.com/team", "example.com/teams/app", false),
            ("example.com/team/app:v1", "example.com/team/app", false),
            ("example.com/team/app:v1", "example.com/team/app:v2", false),
            // The port-less host is not a parent of host:port, as in policy.json.
            ("example.com", "example.com:5000/app", false),
            ("example.com:5000", "example.com:5000/app", true),
            ("*.example.com", "registry.example.com:5000/app", true),
            ("*.example.com", "example.com/app", false),
            ("*.com", "*.example.com", true),
            ("*.example.com", "*.com", false),
            ("*.example.com", "*.example.com", true),
            ("example.com", "*.example.com", false),
            ("localhost:5000", "localhost:5000/app:tag", true),
        ];
        for (outer, inner, expected) in table {
            assert_eq!(contains(outer, inner), expected, "{outer} contains {inner}");
        }
    }
}
