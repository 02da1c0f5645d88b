//! Diagnostics shared by every compiler stage: a code, a message, labelled spans and a help text.
//!
//! Each stage builds `Diag`s through its own constructors; the codes are listed once in [`Code`]
//! so that tests can require a fixture for every one of them.

pub mod messages;
mod problems;
mod shorten;

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, Severity, SourceSpan};

pub use problems::Problems;

/// Index of a loaded source file in a [`SourceMap`].
pub type FileId = usize;

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        Span { file, start, end }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

macro_rules! codes {
    ($($variant:ident => $code:literal,)*) => {
        /// Every diagnostic code that sae-dsl can report.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code { $($variant,)* }
        impl Code {
            /// All codes, for the test that requires a UI fixture per code.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];
            /// The namespaced code, e.g. `sae::check::unknown_layer`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code,)* }
            }
        }
    };
}

codes! {
    Syntax => "sae::parse::syntax",
    NestingTooDeep => "sae::parse::nesting_too_deep",
    BlockComment => "sae::parse::block_comment",
    UnterminatedString => "sae::parse::unterminated_string",
    UnclosedBracket => "sae::parse::unclosed_bracket",
    UnmatchedBracket => "sae::parse::unmatched_bracket",
    ColonArgument => "sae::parse::colon_argument",
    SettingWithEquals => "sae::parse::setting_with_equals",
    ImportNotFound => "sae::load::import_not_found",
    ImportCycle => "sae::load::import_cycle",
    ImportNotUtf8 => "sae::load::import_not_utf8",
    ImportedClausesIgnored => "sae::load::imported_clauses_ignored",
    EmptyFile => "sae::load::empty_file",
    WeightsNormalised => "sae::check::weights_normalised",
    BatchLargerThanData => "sae::check::batch_larger_than_data",
    ScheduleRises => "sae::check::schedule_rises",
    GeneratorRange => "sae::check::generator_range",
    NegativeCost => "sae::check::negative_cost",
    CodesConfined => "sae::check::codes_confined",
    DiscriminatorSigmoid => "sae::check::discriminator_sigmoid",
    UnknownLayer => "sae::check::unknown_layer",
    UnknownPrior => "sae::check::unknown_prior",
    UnknownSpace => "sae::check::unknown_space",
    UnknownDataset => "sae::check::unknown_dataset",
    UnknownTransform => "sae::check::unknown_transform",
    UnknownParameter => "sae::check::unknown_parameter",
    UnknownName => "sae::check::unknown_name",
    UnknownCost => "sae::check::unknown_cost",
    UnknownPenalty => "sae::check::unknown_penalty",
    UnknownOptimizer => "sae::check::unknown_optimizer",
    UnknownSchedule => "sae::check::unknown_schedule",
    UnknownOverride => "sae::check::unknown_override",
    UnknownValidation => "sae::check::unknown_validation",
    UnknownSetting => "sae::check::unknown_setting",
    ArgCount => "sae::check::arg_count",
    ArgType => "sae::check::arg_type",
    MissingArgument => "sae::check::missing_argument",
    DuplicateArgument => "sae::check::duplicate_argument",
    MissingClause => "sae::check::missing_clause",
    DuplicateClause => "sae::check::duplicate_clause",
    DuplicateDefinition => "sae::check::duplicate_definition",
    Shadows => "sae::check::shadows",
    Deprecated => "sae::check::deprecated",
    RecursiveNet => "sae::check::recursive_net",
    InvalidValue => "sae::check::invalid_value",
    LayerInput => "sae::check::layer_input",
    LatentShape => "sae::check::latent_shape",
    OutputShape => "sae::check::output_shape",
    PriorSpace => "sae::check::prior_space",
    EncoderSpace => "sae::check::encoder_space",
    ProjectionInserted => "sae::check::projection_inserted",
    CostOutput => "sae::check::cost_output",
    PenaltySpace => "sae::check::penalty_space",
    GaussianPlacement => "sae::check::gaussian_placement",
    TooLarge => "sae::check::too_large",
    UnknownDistribution => "sae::check::unknown_distribution",
    RecursivePrior => "sae::check::recursive_prior",
    RecursiveFunction => "sae::check::recursive_function",
    PriorReturn => "sae::check::prior_return",
    PriorResult => "sae::check::prior_result",
    ShapeMismatch => "sae::check::shape_mismatch",
    UnusedVariable => "sae::check::unused_variable",
    UnknownComponent => "sae::check::unknown_component",
    ParamInit => "sae::check::param_init",
    NotDifferentiable => "sae::check::not_differentiable",
    UntrainedParam => "sae::check::untrained_param",
    CostExpression => "sae::check::cost_expression",
    CostWithoutReconstruction => "sae::check::cost_without_reconstruction",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One diagnostic: what went wrong, where, and what to do about it.
#[derive(Clone, Debug)]
pub struct Diag {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// Labelled spans; the first is the primary location and decides the file.
    pub labels: Vec<(Span, String)>,
    pub help: Option<String>,
}

impl Diag {
    // Private: messages are written in `messages.rs`, one constructor per code.
    fn error(code: Code, message: impl Into<String>) -> Self {
        Diag {
            code,
            severity: Severity::Error,
            message: message.into(),
            labels: vec![],
            help: None,
        }
    }
    fn warning(code: Code, message: impl Into<String>) -> Self {
        Diag {
            severity: Severity::Warning,
            ..Diag::error(code, message)
        }
    }
    pub fn label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push((span, text.into()));
        self
    }
    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.help = Some(text.into());
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
    /// The file of the primary label, if any.
    pub fn file(&self) -> Option<FileId> {
        self.labels.first().map(|(s, _)| s.file)
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diag {}

/// A diagnostic bound to the text of its file, ready for miette to render.
#[derive(Debug)]
pub struct Located {
    diag: Diag,
    source: Option<Shown>,
    /// The labels that lie in other files than the primary one, one part per file, rendered
    /// after the main report (miette's `related`).
    others: Vec<Located>,
    /// A part of another diagnostic: no code of its own.
    part: bool,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for Located {}

impl Diagnostic for Located {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if self.part {
            return None;
        }
        Some(Box::new(self.diag.code.as_str()))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.others.is_empty() {
            return None;
        }
        Some(Box::new(self.others.iter().map(|o| o as &dyn Diagnostic)))
    }
    fn severity(&self) -> Option<Severity> {
        Some(self.diag.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let file = self.diag.file()?;
        self.source.as_ref()?;
        // Labels in other files than the primary one cannot be drawn on this source.
        let labels = self
            .diag
            .labels
            .iter()
            .enumerate()
            .filter(move |(_, (s, _))| s.file == file)
            .map(|(i, (s, text))| {
                let span = SourceSpan::new(s.start.into(), s.end.saturating_sub(s.start));
                let text = if text.is_empty() {
                    None
                } else {
                    Some(text.clone())
                };
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text, span)
                } else {
                    LabeledSpan::new_with_span(text, span)
                }
            });
        Some(Box::new(labels))
    }
}

/// The text of every loaded file, by [`FileId`].
#[derive(Default, Debug, Clone)]
pub struct SourceMap {
    files: Vec<(String, Arc<str>)>,
    /// For a copy whose long lines were cut ([`SourceMap::shortened`]): each file's original
    /// text and the cuts, so that headers give the original line and column.
    cuts: Vec<Option<Arc<(Arc<str>, shorten::Shortened)>>>,
}

/// A file's text as the renderer reads it. miette counts a header's column in bytes of the text
/// it is given; this counts characters of the original line (before any cut).
#[derive(Debug, Clone)]
struct Shown {
    name: String,
    text: Arc<str>,
    cut: Option<Arc<(Arc<str>, shorten::Shortened)>>,
}

impl Shown {
    /// The 0-based column, in characters of the original line, of an offset of the shown text.
    fn column(&self, offset: usize) -> usize {
        let (text, at) = match &self.cut {
            Some(cut) => (&cut.0, cut.1.unmap(offset)),
            None => (&self.text, offset),
        };
        let at = at.min(text.len());
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        text.get(line_start..at).map_or(0, |s| s.chars().count())
    }
}

impl miette::SourceCode for Shown {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self.text.as_bytes().read_span(span, before, after)?;
        let column = if before == 0 {
            self.column(span.offset())
        } else {
            inner.column()
        };
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

impl SourceMap {
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        self.files.push((name.into(), text.into()));
        self.files.len() - 1
    }
    pub fn name(&self, id: FileId) -> &str {
        &self.files[id].0
    }
    pub fn text(&self, id: FileId) -> &Arc<str> {
        &self.files[id].1
    }
    pub fn len(&self) -> usize {
        self.files.len()
    }
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Binds a diagnostic to its file's text; labels in other files (an imported net or prior)
    /// become parts of their own, each shown with its file.
    pub fn locate(&self, diag: Diag) -> Located {
        let primary = diag.file();
        let mut others: Vec<Located> = vec![];
        for (span, text) in &diag.labels {
            if Some(span.file) == primary || span.file >= self.files.len() {
                continue;
            }
            let at = others.iter().position(|o| o.diag.file() == Some(span.file));
            let part = match at {
                Some(i) => &mut others[i],
                None => {
                    others.push(Located {
                        diag: Diag {
                            code: diag.code,
                            severity: Severity::Advice,
                            message: format!("in {}", self.files[span.file].0),
                            labels: vec![],
                            help: None,
                        },
                        source: Some(self.named(span.file)),
                        others: vec![],
                        part: true,
                    });
                    others.last_mut().expect("just pushed")
                }
            };
            part.diag.labels.push((*span, text.clone()));
        }
        let source = primary
            .filter(|&f| f < self.files.len())
            .map(|f| self.named(f));
        Located {
            diag,
            source,
            others,
            part: false,
        }
    }

    fn named(&self, f: FileId) -> Shown {
        Shown {
            name: self.files[f].0.clone(),
            text: self.files[f].1.clone(),
            cut: self.cuts.get(f).cloned().flatten(),
        }
    }

    /// A diagnostic whose files have lines too long to show whole: the same diagnostic on a
    /// copy of the source map with those lines cut around its labels (spans moved to match).
    fn shortened(&self, diag: &Diag) -> Option<(SourceMap, Diag)> {
        let mut map = self.clone();
        let mut diag = diag.clone();
        let mut changed = false;
        for f in 0..self.files.len() {
            let spans: Vec<(usize, usize)> = diag
                .labels
                .iter()
                .filter(|(s, _)| s.file == f)
                .map(|(s, _)| (s.start, s.end))
                .collect();
            if spans.is_empty() {
                continue;
            }
            let Some(short) = shorten::shorten(&self.files[f].1, &spans) else {
                continue;
            };
            for (s, _) in diag.labels.iter_mut().filter(|(s, _)| s.file == f) {
                let (a, b) = (short.map(s.start), short.map(s.end));
                *s = Span::new(f, a, b.max(a));
            }
            map.files[f].1 = short.text.clone().into();
            map.cuts.resize(self.files.len(), None);
            map.cuts[f] = Some(Arc::new((self.files[f].1.clone(), short)));
            changed = true;
        }
        changed.then_some((map, diag))
    }

    /// Renders diagnostics as text; `color` false gives the stable form used in snapshots.
    pub fn render(&self, diags: &[Diag], color: bool, width: usize) -> String {
        use miette::{GraphicalReportHandler, GraphicalTheme};
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(width)
            .with_links(false);
        let mut out = String::new();
        for d in diags {
            let located = match self.shortened(d) {
                Some((map, d)) => map.locate(d),
                None => self.locate(d.clone()),
            };
            if handler.render_report(&mut out, &located).is_err() {
                out.push_str(&format!("{}: {}\n", d.code, d.message));
            }
        }
        out
    }
}

/// "did you mean" over a candidate list, by edit distance.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(&name.to_lowercase(), &c.to_lowercase());
        let close = strsim::levenshtein(name, c) <= 2.max(name.len() / 3) || score > 0.85;
        if close && best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

/// Most candidates listed in a help text; longer lists keep the closest and say how many more.
pub const MAX_CANDIDATES: usize = 24;

/// Help text for an unknown name: a suggestion when one is close, and the list of candidates
/// (the [`MAX_CANDIDATES`] closest by spelling when there are more).
pub fn unknown_help(name: &str, what: &str, candidates: &[&str]) -> String {
    if candidates.is_empty() {
        return format!("there are no {what} here");
    }
    let shown: Vec<&str> = if candidates.len() <= MAX_CANDIDATES {
        candidates.to_vec()
    } else {
        let mut by_score: Vec<&str> = candidates.to_vec();
        let score = |c: &str| strsim::jaro_winkler(&name.to_lowercase(), &c.to_lowercase());
        by_score.sort_by(|a, b| score(b).total_cmp(&score(a)).then(a.cmp(b)));
        by_score.truncate(MAX_CANDIDATES);
        by_score
    };
    let mut list = shown
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if candidates.len() > shown.len() {
        list.push_str(&format!(" and {} more", candidates.len() - shown.len()));
    }
    match did_you_mean(name, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`? Known {what}: {list}"),
        None => format!("known {what}: {list}"),
    }
}
