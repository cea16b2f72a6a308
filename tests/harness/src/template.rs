//! Reads `infra/template.yaml` and resolves the CloudFormation forms it uses: `!Ref` /
//! `Ref` (parameters with their defaults or overrides, pseudo parameters, created
//! resources), `!Sub` / `Fn::Sub` (string and list forms), `!GetAtt` / `Fn::GetAtt`. Anything
//! else is reported as unsupported rather than guessed.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value as Json};
use serde_yaml::Value as Yaml;

use crate::HarnessError;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    doc: Yaml,
}

/// One resource definition, unresolved.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub logical_id: String,
    pub kind: String,
    pub properties: Yaml,
}

impl Template {
    /// The project's own template, `<repo>/infra/template.yaml`.
    pub fn project() -> Result<Template, HarnessError> {
        Self::load(&crate::repo_root().join("infra/template.yaml"))
    }

    /// The sync queue's redrive count as the project's template deploys it (the default of
    /// its `MaxReceiveCount` parameter), for in-memory queues that must dead-letter where SQS
    /// would and for tests of the redrive itself.
    pub fn max_receive_count() -> u32 {
        let template = Self::project().expect("infra/template.yaml loads");
        let parameters = template
            .parameters(&BTreeMap::new())
            .expect("template parameters");
        parameters["MaxReceiveCount"]
            .parse()
            .expect("MaxReceiveCount has a numeric default")
    }

    pub fn load(path: &Path) -> Result<Template, HarnessError> {
        let text = std::fs::read_to_string(path).map_err(|source| HarnessError::ReadTemplate {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Template, HarnessError> {
        Ok(Template {
            doc: serde_yaml::from_str(text)?,
        })
    }

    /// Every parameter's value: the override if given, else the default.
    pub fn parameters(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, HarnessError> {
        let mut out = BTreeMap::new();
        if let Some(params) = self.doc.get("Parameters").and_then(Yaml::as_mapping) {
            for (name, def) in params {
                let name = name.as_str().unwrap_or_default().to_string();
                let value = match overrides.get(&name) {
                    Some(v) => v.clone(),
                    None => match def.get("Default") {
                        Some(d) => scalar_text(d).ok_or_else(|| {
                            HarnessError::Unsupported(format!(
                                "parameter {name} has a non-scalar default"
                            ))
                        })?,
                        None => {
                            return Err(HarnessError::Unsupported(format!(
                                "parameter {name} has no default; pass a value"
                            )));
                        }
                    },
                };
                out.insert(name, value);
            }
        }
        if let Some(unknown) = overrides.keys().find(|k| !out.contains_key(*k)) {
            return Err(HarnessError::Unsupported(format!(
                "no parameter named {unknown}"
            )));
        }
        Ok(out)
    }

    /// The resources, in file order.
    pub fn resources(&self) -> Vec<ResourceDef> {
        let Some(resources) = self.doc.get("Resources").and_then(Yaml::as_mapping) else {
            return Vec::new();
        };
        resources
            .iter()
            .map(|(id, def)| ResourceDef {
                logical_id: id.as_str().unwrap_or_default().to_string(),
                kind: def
                    .get("Type")
                    .and_then(Yaml::as_str)
                    .unwrap_or_default()
                    .to_string(),
                properties: def.get("Properties").cloned().unwrap_or(Yaml::Null),
            })
            .collect()
    }

    /// The outputs' value expressions, by name.
    pub fn outputs(&self) -> BTreeMap<String, Yaml> {
        self.doc
            .get("Outputs")
            .and_then(Yaml::as_mapping)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.get("Value")?.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn scalar_text(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Why an expression could not be resolved yet.
#[derive(Debug)]
pub enum Unresolved {
    /// It refers to a resource not created yet: create that one first.
    Waiting(String),
    Error(HarnessError),
}

impl From<HarnessError> for Unresolved {
    fn from(e: HarnessError) -> Self {
        Unresolved::Error(e)
    }
}

/// What `!Ref` and `!GetAtt` of one created resource give.
pub trait Lookup {
    /// `Ref` of a resource (queue URL, table name, secret ARN), if created.
    fn reference(&self, logical_id: &str) -> Option<String>;
    /// `GetAtt` of a resource, if created and known.
    fn attribute(&self, logical_id: &str, attribute: &str) -> Option<String>;
    /// Whether the template defines this resource at all.
    fn defined(&self, logical_id: &str) -> bool;
}

/// Resolves intrinsic functions against parameters, pseudo parameters and created resources.
pub struct Resolver<'a, L: Lookup> {
    pub parameters: &'a BTreeMap<String, String>,
    pub pseudo: BTreeMap<&'static str, String>,
    pub resources: &'a L,
}

impl<L: Lookup> Resolver<'_, L> {
    pub fn resolve(&self, v: &Yaml) -> Result<Json, Unresolved> {
        match v {
            Yaml::Null => Ok(Json::Null),
            Yaml::Bool(b) => Ok(Json::Bool(*b)),
            Yaml::Number(n) => Ok(serde_json::to_value(n).expect("numbers convert")),
            Yaml::String(s) => Ok(Json::String(s.clone())),
            Yaml::Sequence(items) => items
                .iter()
                .map(|i| self.resolve(i))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array),
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let name = tag.trim_start_matches('!');
                self.function(name, &tagged.value, true)
            }
            Yaml::Mapping(m) => {
                if m.len() == 1 {
                    let (k, arg) = m.iter().next().expect("one entry");
                    match k.as_str() {
                        Some("Ref") => return self.function("Ref", arg, false),
                        Some(f) if f.starts_with("Fn::") => {
                            return self.function(&f[4..], arg, false);
                        }
                        _ => {}
                    }
                }
                let mut out = Map::new();
                for (k, val) in m {
                    let key = scalar_text(k).ok_or_else(|| {
                        HarnessError::Unsupported("a mapping key that is not a string".into())
                    })?;
                    out.insert(key, self.resolve(val)?);
                }
                Ok(Json::Object(out))
            }
        }
    }

    fn function(&self, name: &str, arg: &Yaml, short: bool) -> Result<Json, Unresolved> {
        match name {
            "Ref" => {
                let target = arg
                    .as_str()
                    .ok_or_else(|| unsupported("!Ref of a non-string"))?;
                self.reference(target).map(Json::String)
            }
            "GetAtt" => {
                let (res, attr) = match arg {
                    // Short form `!GetAtt Res.Attr`; long form `[Res, Attr]`.
                    Yaml::String(s) if short || s.contains('.') => s
                        .split_once('.')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .ok_or_else(|| unsupported("!GetAtt without Resource.Attribute"))?,
                    Yaml::Sequence(parts) if parts.len() == 2 => (
                        parts[0].as_str().unwrap_or_default().to_string(),
                        parts[1].as_str().unwrap_or_default().to_string(),
                    ),
                    _ => {
                        return Err(unsupported(
                            "a GetAtt form other than Res.Attr or [Res, Attr]",
                        ));
                    }
                };
                self.attribute(&res, &attr).map(Json::String)
            }
            "Sub" => {
                let (text, vars) = match arg {
                    Yaml::String(s) => (s.clone(), BTreeMap::new()),
                    Yaml::Sequence(parts) if parts.len() == 2 => {
                        let text = parts[0]
                            .as_str()
                            .ok_or_else(|| {
                                unsupported("!Sub list whose first item is not a string")
                            })?
                            .to_string();
                        let mut vars = BTreeMap::new();
                        if let Some(m) = parts[1].as_mapping() {
                            for (k, v) in m {
                                let value = match self.resolve(v)? {
                                    Json::String(s) => s,
                                    other => other.to_string(),
                                };
                                vars.insert(k.as_str().unwrap_or_default().to_string(), value);
                            }
                        }
                        (text, vars)
                    }
                    _ => {
                        return Err(unsupported(
                            "a !Sub form other than a string or [string, vars]",
                        ));
                    }
                };
                self.substitute(&text, &vars).map(Json::String)
            }
            other => Err(unsupported(&format!("the intrinsic function {other}"))),
        }
    }

    fn reference(&self, target: &str) -> Result<String, Unresolved> {
        if let Some(v) = self.parameters.get(target) {
            return Ok(v.clone());
        }
        if let Some(v) = self.pseudo.get(target) {
            return Ok(v.clone());
        }
        if let Some(v) = self.resources.reference(target) {
            return Ok(v);
        }
        if self.resources.defined(target) {
            return Err(Unresolved::Waiting(target.to_string()));
        }
        Err(unsupported(&format!(
            "!Ref {target}: no such parameter or resource"
        )))
    }

    fn attribute(&self, res: &str, attr: &str) -> Result<String, Unresolved> {
        if let Some(v) = self.resources.attribute(res, attr) {
            return Ok(v);
        }
        if self.resources.defined(res) && self.resources.reference(res).is_none() {
            return Err(Unresolved::Waiting(res.to_string()));
        }
        Err(unsupported(&format!("!GetAtt {res}.{attr}")))
    }

    fn substitute(
        &self,
        text: &str,
        vars: &BTreeMap<String, String>,
    ) -> Result<String, Unresolved> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| unsupported(&format!("unterminated ${{ in !Sub {text:?}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                // `${!Literal}` writes `${Literal}`.
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(name) {
                out.push_str(v);
            } else if let Some((res, attr)) = name.split_once('.') {
                out.push_str(&self.attribute(res, attr)?);
            } else {
                out.push_str(&self.reference(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn unsupported(what: &str) -> Unresolved {
    Unresolved::Error(HarnessError::Unsupported(format!(
        "{what} is not resolved by the local stack (tests/harness/src/template.rs)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl Lookup for Fake {
        fn reference(&self, id: &str) -> Option<String> {
            (id == "Made").then(|| "made-ref".to_string())
        }
        fn attribute(&self, id: &str, attr: &str) -> Option<String> {
            (id == "Made" && attr == "Arn").then(|| "arn:made".to_string())
        }
        fn defined(&self, id: &str) -> bool {
            id == "Made" || id == "Later"
        }
    }

    #[test]
    fn resolves_the_forms_the_template_uses() {
        let t = Template::parse(
            r#"
Parameters:
  Prefix: {Type: String, Default: orglink}
  Count: {Type: Number, Default: 5}
Resources: {}
"#,
        )
        .unwrap();
        let params = t.parameters(&BTreeMap::new()).unwrap();
        assert_eq!(params["Count"], "5");
        let r = Resolver {
            parameters: &params,
            pseudo: BTreeMap::from([("AWS::Region", "us-east-1".to_string())]),
            resources: &Fake,
        };
        let y = |s: &str| serde_yaml::from_str::<Yaml>(s).unwrap();
        assert_eq!(
            r.resolve(&y(r#"!Sub "${Prefix}-q.fifo""#)).unwrap(),
            "orglink-q.fifo"
        );
        assert_eq!(
            r.resolve(&y(r#"!Sub "${AWS::Region}/${Made.Arn}/${!Lit}""#))
                .unwrap(),
            "us-east-1/arn:made/${Lit}"
        );
        assert_eq!(
            r.resolve(&y(r#"{"Fn::Sub": ["${X}-${Prefix}", {X: !Ref Made}]}"#))
                .unwrap(),
            "made-ref-orglink"
        );
        assert_eq!(r.resolve(&y("!GetAtt Made.Arn")).unwrap(), "arn:made");
        assert_eq!(
            r.resolve(&y(r#"{"Fn::GetAtt": [Made, Arn]}"#)).unwrap(),
            "arn:made"
        );
        assert_eq!(r.resolve(&y("{Ref: Count}")).unwrap(), "5");
        assert!(matches!(
            r.resolve(&y("!GetAtt Later.Arn")),
            Err(Unresolved::Waiting(w)) if w == "Later"
        ));
        assert!(matches!(
            r.resolve(&y("!If [C, a, b]")),
            Err(Unresolved::Error(HarnessError::Unsupported(_)))
        ));
        assert!(matches!(
            r.resolve(&y("!Ref Nothing")),
            Err(Unresolved::Error(HarnessError::Unsupported(_)))
        ));
        let overridden = t
            .parameters(&BTreeMap::from([("Prefix".to_string(), "t1".to_string())]))
            .unwrap();
        assert_eq!(overridden["Prefix"], "t1");
        assert!(
            t.parameters(&BTreeMap::from([("Nope".to_string(), "x".to_string())]))
                .is_err()
        );
    }
}
