//! The compiled model as a Graphviz picture (`sae-dsl graph --dot`): data -> encoder layers with
//! their output shapes -> latent space and prior -> generator -> reconstruction cost, with the
//! penalties between codes and prior draws. A composite latent is drawn as a cluster of its
//! components; spatial-transformer layers get a dotted edge from the component they read.

use std::fmt::Write;

use super::*;

/// Text escaped for a double-quoted Graphviz string (`\n` in the input becomes a line break).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(ch),
        }
    }
    out
}

/// A node id made of letters, digits and `_` only.
fn id(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// The first line of a prior's readable form (a program's note left out).
fn prior_text(p: &Prior) -> String {
    let s = p.to_string();
    match s.find(super::display::PROGRAM_NOTE) {
        Some(i) => s[..i].trim_end().to_string(),
        None => s.lines().next().unwrap_or_default().to_string(),
    }
}

/// An elementwise layer without parameters, drawn inside the node of the layer before it.
fn activation(op: &LayerOp) -> bool {
    matches!(
        op,
        LayerOp::Relu
            | LayerOp::LeakyRelu { .. }
            | LayerOp::Tanh
            | LayerOp::Sigmoid
            | LayerOp::Identity
            | LayerOp::Gelu
            | LayerOp::Silu
            | LayerOp::Elu { .. }
            | LayerOp::Softplus { .. }
            | LayerOp::Dropout { .. }
    )
}

/// The component a layer reads beside its input (crop, place) or selects (select).
fn reads(op: &LayerOp) -> Option<(&str, &'static str)> {
    match op {
        LayerOp::Crop { component, .. } => Some((component, "at")),
        LayerOp::Place { component, .. } => Some((component, "at")),
        LayerOp::Select { component, .. } => Some((component, "")),
        _ => None,
    }
}

/// Writes one network as a cluster of its layers; returns the ids of its first and last node.
fn network(
    out: &mut String,
    key: &str,
    title: &str,
    net: &Network,
    latent_id: &dyn Fn(&str) -> String,
) -> (String, String) {
    let _ = writeln!(out, "  subgraph cluster_{key} {{");
    let _ = writeln!(
        out,
        "    label=\"{}\"; style=rounded; color=\"#888888\";",
        esc(&format!(
            "{title}: {} -> {}, {} parameters",
            shape_str(&net.input),
            shape_str(&net.output),
            thousands(net.params())
        ))
    );
    // One node per layer, with a following parameter-free activation folded into it.
    let mut ids: Vec<String> = vec![];
    let mut nodes: Vec<(usize, String)> = vec![];
    for (i, l) in net.layers.iter().enumerate() {
        let folds = activation(&l.op) && i > 0 && !nodes.is_empty();
        if folds {
            if let Some((_, text)) = nodes.last_mut() {
                let shape_line = text.rfind('\n').map_or(0, |n| n + 1);
                text.insert_str(shape_line.saturating_sub(1), &format!(" + {}", l.op));
            }
            continue;
        }
        let params = if l.params > 0 {
            format!(", {} params", thousands(l.params))
        } else {
            String::new()
        };
        nodes.push((i, format!("{}\n{}{params}", l.op, shape_str(&l.output))));
    }
    for (i, text) in &nodes {
        let node = id(&[key, &(i + 1).to_string()]);
        let _ = writeln!(out, "    {node} [label=\"{}\"];", esc(text));
        ids.push(node);
    }
    let _ = writeln!(out, "  }}");
    for w in ids.windows(2) {
        let _ = writeln!(out, "  {} -> {};", w[0], w[1]);
    }
    for (&(i, _), node) in nodes.iter().zip(&ids) {
        if let Some((component, label)) = reads(&net.layers[i].op) {
            // A select is the generator's input edge (drawn by the caller); place/crop read a
            // component beside their input.
            if label == "at" {
                let _ = writeln!(
                    out,
                    "  {} -> {node} [style=dotted, label=\"{label} {}\"];",
                    latent_id(component),
                    esc(component)
                );
            }
        }
    }
    let first = ids.first().cloned().unwrap_or_else(|| id(&[key, "empty"]));
    let last = ids.last().cloned().unwrap_or_else(|| first.clone());
    if ids.is_empty() {
        let _ = writeln!(
            out,
            "  {first} [label=\"{}\"];",
            esc(&format!("{title} (no layers)"))
        );
    }
    (first, last)
}

// long: one section per part of the picture (data, code, encoders, generator, objective), in
// drawing order; they share the node ids.
/// The model as a Graphviz `digraph`.
pub fn to_dot(m: &Model) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", esc(&m.name));
    let _ = writeln!(out, "  rankdir=TB; newrank=true;");
    let _ = writeln!(
        out,
        "  graph [fontname=\"Helvetica\", fontsize=11, labelloc=t, label=\"{}\"];",
        esc(&format!("model {}", m.name))
    );
    let _ = writeln!(
        out,
        "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#f4f4f4\", fontname=\"Helvetica\", fontsize=10];"
    );
    let _ = writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=9];");

    // Data.
    let transforms: String = m
        .data
        .transforms
        .iter()
        .map(|t| format!("\n-> {t}"))
        .collect();
    let _ = writeln!(
        out,
        "  data [shape=cylinder, fillcolor=\"#dbe9f6\", label=\"{}\"];",
        esc(&format!(
            "data {}{transforms}\n{}",
            m.data.source,
            shape_str(&m.data.shape)
        ))
    );

    // Latent components (a cluster when the code has several), each with its prior.
    let latent_id = |name: &str| id(&["latent", name]);
    let composite = m.latents.len() > 1;
    if composite {
        let dims: usize = m.latents.iter().map(|l| l.space.dim() as usize).sum();
        let _ = writeln!(out, "  subgraph cluster_code {{");
        let _ = writeln!(
            out,
            "    label=\"{}\"; style=dashed; color=\"#6a51a3\";",
            esc(&format!(
                "code: {} components, {dims} coordinates",
                m.latents.len()
            ))
        );
    }
    for l in &m.latents {
        let _ = writeln!(
            out,
            "  {} [shape=ellipse, fillcolor=\"#e5dcf3\", label=\"{}\"];",
            latent_id(&l.name),
            esc(&format!("{}: {}", l.name, l.space))
        );
    }
    if composite {
        let _ = writeln!(out, "  }}");
    }
    let same: Vec<String> = m.latents.iter().map(|l| latent_id(&l.name)).collect();
    let _ = writeln!(out, "  {{ rank=same; {}; }}", same.join("; "));
    for l in &m.latents {
        let p = id(&["prior", &l.name]);
        let _ = writeln!(
            out,
            "  {p} [shape=note, fillcolor=\"#fff3d6\", label=\"{}\"];",
            esc(&format!("prior\n{}", prior_text(&l.prior)))
        );
    }

    // Encoders: data -> layers -> their component (or every component of a plain code).
    for (k, e) in m.encoders.iter().enumerate() {
        let key = match &e.component {
            Some(c) => id(&["encoder", c]),
            None => format!(
                "encoder{}",
                if k == 0 { String::new() } else { k.to_string() }
            ),
        };
        let title = match &e.component {
            Some(c) => format!("encoder {c}"),
            None => "encoder".to_string(),
        };
        let (first, last) = network(&mut out, &key, &title, &e.net, &latent_id);
        let _ = writeln!(out, "  data -> {first};");
        let targets: Vec<&Latent> = match &e.component {
            Some(c) => m.latents.iter().filter(|l| &l.name == c).collect(),
            None => m.latents.iter().collect(),
        };
        for l in targets {
            let _ = writeln!(out, "  {last} -> {};", latent_id(&l.name));
        }
    }

    // Generator: the code (or the components it selects) -> layers -> reconstruction.
    let (first, last) = network(&mut out, "generator", "generator", &m.generator, &latent_id);
    let selected: Vec<&str> = m
        .generator
        .layers
        .iter()
        .filter_map(|l| match &l.op {
            LayerOp::Select { component, .. } => Some(component.as_str()),
            _ => None,
        })
        .collect();
    for l in &m.latents {
        if selected.is_empty() || selected.contains(&l.name.as_str()) {
            let _ = writeln!(out, "  {} -> {first};", latent_id(&l.name));
        }
    }

    // The objective: the reconstruction cost and the penalties.
    let _ = writeln!(
        out,
        "  cost [shape=hexagon, fillcolor=\"#dff0d8\", label=\"{}\"];",
        esc(&format!("cost {}", m.cost))
    );
    let _ = writeln!(out, "  {last} -> cost [label=\"reconstruction\"];");
    let _ = writeln!(out, "  data -> cost [style=dashed, label=\"x\"];");
    for (i, p) in m.penalties.iter().enumerate() {
        let node = id(&["penalty", &i.to_string()]);
        let text = p.to_string();
        let first_line = text
            .lines()
            .next()
            .unwrap_or_default()
            .replacen(" on ", "\non ", 1);
        let _ = writeln!(
            out,
            "  {node} [shape=hexagon, fillcolor=\"#f2dede\", label=\"{}\"];",
            esc(&format!("penalty\n{first_line}"))
        );
        // A joint penalty (no `on`) compares every component.
        let on: Vec<&str> = if p.on.is_empty() {
            m.latents.iter().map(|l| l.name.as_str()).collect()
        } else {
            vec![p.on.as_str()]
        };
        for c in on {
            let _ = writeln!(out, "  {} -> {node} [label=\"codes\"];", latent_id(c));
            let _ = writeln!(
                out,
                "  {} -> {node} [style=dashed, label=\"draws\"];",
                id(&["prior", c])
            );
        }
    }
    out.push_str("}\n");
    out
}
