# The image's hyperparameters, parsed strictly: SageMaker passes strings; an unknown name, a value of the
# wrong type or out of range is an error (class input_error) naming the hyperparameter. The names are our
# Python image's (container/hyperparameters.py), so that the pipeline's Train step in custom mode drives
# either image; each maps to its gbm argument:
#   num_round -> n.trees, max_depth -> interaction.depth, eta -> shrinkage, subsample -> bag.fraction,
#   min_child_weight -> n.minobsinnode (rounded up, at least 1: gbm counts observations, not weight),
#   monotone_constraints -> var.monotone (with max_depth 1 only: gbm checks them split by split, so deeper
#   trees can break them between leaves), seed -> set.seed; early_stopping_rounds keeps the trees up to the
#   best validation AUC (as XGBoost's early stopping does); calibration is fitted on validation.

INT32_MAX <- 2147483647  # gbm keeps trees and depths in R integers, and set.seed takes one
CALIBRATIONS <- c("isotonic", "platt", "none")
INTEGER <- "^[+-]?[0-9]+$"
NUMBER <- "^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"

# An error the job's input causes: its message is the failure reason, the exit code 2.
input_error <- function(...) {
  stop(structure(class = c("input_error", "error", "condition"), list(message = paste0(...), call = NULL)))
}

integer_in <- function(low, high = INT32_MAX) {
  function(raw) {
    if (!grepl(INTEGER, raw)) stop("is not an integer")
    value <- as.numeric(raw)
    if (value < low || value > high) stop(sprintf("must be from %d to %.0f", low, high))
    value
  }
}

number_in <- function(low, high, low_open = FALSE) {
  function(raw) {
    if (!grepl(NUMBER, raw)) stop("is not a number")
    value <- as.numeric(raw)
    if (value < low || value > high || (low_open && value == low)) {
      stop(sprintf("must be in %s%g, %g]", if (low_open) "(" else "[", low, high))
    }
    value
  }
}

one_of <- function(choices) {
  function(raw) {
    if (!(raw %in% choices)) stop(sprintf("must be one of %s", paste(choices, collapse = ", ")))
    raw
  }
}

# (1,0,-1): +1 increasing, -1 decreasing, 0 free, one per feature in column order
constraints <- function(raw) {
  items <- trimws(strsplit(sub("^\\((.*)\\)$", "\\1", raw), ",", fixed = TRUE)[[1]])
  items <- items[nzchar(items)]
  if (!grepl("^\\(.*\\)$", raw) || length(items) == 0 || !all(items %in% c("-1", "0", "1"))) {
    stop("must look like (1,0,-1): one of -1, 0, 1 per feature")
  }
  as.integer(items)
}

PARSERS <- list(
  num_round = integer_in(1), max_depth = integer_in(1), eta = number_in(0, 1, low_open = TRUE),
  subsample = number_in(0, 1, low_open = TRUE), min_child_weight = number_in(0, 1e9),
  early_stopping_rounds = integer_in(1), seed = integer_in(0), calibration = one_of(CALIBRATIONS),
  monotone_constraints = constraints
)

DEFAULTS <- list(max_depth = 6, eta = 0.3, subsample = 1, min_child_weight = 1, early_stopping_rounds = NULL,
                 seed = 0, calibration = "isotonic", monotone_constraints = NULL)

# Hyperparameters from hyperparameters.json (a named list of strings), with the image's defaults; an
# input_error for the first problem.
parse_hyperparameters <- function(raw) {
  values <- DEFAULTS
  for (name in names(raw)) {
    if (!(name %in% names(PARSERS))) {
      input_error(sprintf("unknown hyperparameter '%s'; this image accepts %s", name,
                          paste(sort(names(PARSERS)), collapse = ", ")))
    }
    value <- raw[[name]]
    if (!is.character(value) || length(value) != 1) {
      input_error(sprintf("hyperparameter %s: %s must be a string (SageMaker passes strings)", name,
                          jsonlite::toJSON(value, auto_unbox = TRUE, null = "null")))
    }
    parsed <- tryCatch(PARSERS[[name]](trimws(value)), error = function(e) {
      input_error(sprintf("hyperparameter %s: '%s' %s", name, value, conditionMessage(e)))
    })
    values[name] <- list(parsed)
  }
  if (is.null(values$num_round)) input_error("hyperparameter num_round is required")
  values
}
