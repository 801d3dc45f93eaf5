# What train and serve share: where the container's files are, how a value of a CSV row is read, and what
# a row of the wrong width is told. Sourced by both programs from the folder they are in (/opt/program).

# /opt/ml, or SAGEMAKER_BASE_DIR when the programs run without Docker (as our Python image reads it)
ml_path <- function(...) {
  base <- Sys.getenv("SAGEMAKER_BASE_DIR")
  file.path(if (nzchar(base)) base else "/opt/ml", ...)
}

MODEL_FILE <- "model.rds"     # list(gbm, n_trees, calibration, features): what serve loads
METADATA_FILE <- "model.json" # features, n_trees, hyperparameters, metrics, versions: for people and checks

# missing values, as pandas reads them in our Python image; any other text that is not a number is refused
MISSING <- c("", "NA", "NaN", "nan")

# The lines of CSV bytes (CRLF and CR line ends read as LF), and what makes them unfit as text (NULL if
# nothing): a NUL byte (dropped from the lines, so that the rows can still be counted) or bytes that are not
# UTF-8.
text_lines <- function(bytes) {
  nul <- bytes == as.raw(0)
  text <- rawToChar(bytes[!nul])
  if (grepl("\r", text, fixed = TRUE, useBytes = TRUE)) text <- gsub("\r\n?", "\n", text, useBytes = TRUE)
  problem <- if (any(nul)) "it holds a NUL byte" else if (!validUTF8(text)) "it is not UTF-8 text"
  list(lines = strsplit(text, "\n", fixed = TRUE, useBytes = TRUE)[[1]], problem = problem)
}

# The rows of headerless CSV lines (blank lines dropped): list(fields = every field of every row, in order;
# widths = how many fields each row has). Vectorised (6 MB of rows in a second), on bytes: text that is not
# UTF-8 is refused by the caller.
csv_table <- function(lines) {
  lines <- lines[grepl("[^[:space:]]", lines, useBytes = TRUE)]
  if (length(lines) == 0) return(list(fields = character(0), widths = integer(0)))
  widths <- nchar(lines, "bytes") - nchar(gsub(",", "", lines, fixed = TRUE, useBytes = TRUE), "bytes") + 1L
  # one split of all rows; the sentinel keeps a trailing empty field, which strsplit would drop
  fields <- strsplit(paste0(paste(lines, collapse = ","), ",\001"), ",", fixed = TRUE, useBytes = TRUE)[[1]]
  list(fields = fields[-length(fields)], widths = widths)
}

# Numbers of a vector of fields: NA for a missing value; an error of class bad_value naming the first
# field that is not a number (infinite values are numbers: the caller decides about them).
as_numbers <- function(fields) {
  values <- suppressWarnings(as.numeric(fields))
  unread <- which(is.na(values))
  bad <- unread[!(trimws(fields[unread]) %in% MISSING)]
  if (length(bad) > 0) {
    stop(structure(class = c("bad_value", "error", "condition"),
                   list(message = sprintf("'%s' is not a number", fields[bad[1]]), call = NULL, index = bad[1])))
  }
  values[is.nan(values)] <- NA  # gbm takes NA, never NaN, for a missing value
  values
}

# The first line of a condition's message (jsonlite's parse errors point at the fault on the lines below).
first_line <- function(condition) strsplit(conditionMessage(condition), "\n", fixed = TRUE)[[1]][1]

# What is wrong with a request row of `got` fields for a model of `expected` features: the words of our
# Python image (container/model.py width_problem), so that every serving path says it alike.
width_problem <- function(row, got, expected) {
  hint <- if (got == expected + 1) " (is the label column still in? send the features only)" else
    " (send the features only, in the order the model was trained on)"
  sprintf("row %d: expected %d features, got %d%s", row, expected, got, hint)
}

# Probabilities for a feature matrix: the boosted trees' scores (bernoulli: the logistic of the margin),
# calibrated (calibration.R).
predict_model <- function(model, features) {
  frame <- as.data.frame(features)
  names(frame) <- model$gbm$var.names
  margins <- gbm::predict.gbm(model$gbm, frame, n.trees = model$n_trees, type = "link")
  apply_calibration(model$calibration, stats::plogis(margins), margins)
}
