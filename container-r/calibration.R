# Probability calibration of the boosted trees' scores, fitted on the validation channel, as our Python
# image does it (container/calibration.py): isotonic regression maps scores to conversion rates with a
# monotone step function (kept as the points x -> y, linear in between, clipped at the ends); Platt
# scaling fits a logistic curve on the margin (probability = 1 / (1 + exp(-(a * margin + b)))).

# The calibration `method` fitted on validation scores (or margins) and their 0/1 labels.
fit_calibration <- function(method, scores, margins, labels) {
  if (method == "isotonic") {
    # one point per distinct score (the mean label, weighted by its count), then pool adjacent violators
    x <- sort(unique(scores))
    index <- match(scores, x)
    y <- as.numeric(tapply(labels, index, mean))
    weight <- as.numeric(tabulate(index, length(x)))
    fitted <- pool_adjacent_violators(y, weight)
    return(list(method = "isotonic", x = x, y = fitted))
  }
  if (method == "platt") {
    # as good as unregularised (our Python image's C=1e6): separable data still gives finite a and b
    fit <- suppressWarnings(stats::glm.fit(cbind(1, margins), labels, family = stats::binomial()))
    return(list(method = "platt", a = unname(fit$coefficients[2]), b = unname(fit$coefficients[1])))
  }
  list(method = "none")
}

# The non-decreasing sequence closest to `y` in weighted least squares (blocks kept on a stack).
pool_adjacent_violators <- function(y, weight) {
  values <- numeric(length(y))
  weights <- numeric(length(y))
  sizes <- integer(length(y))
  n <- 0L
  for (i in seq_along(y)) {
    n <- n + 1L
    values[n] <- y[i]
    weights[n] <- weight[i]
    sizes[n] <- 1L
    while (n > 1L && values[n - 1L] > values[n]) {
      pooled <- weights[n - 1L] + weights[n]
      values[n - 1L] <- (values[n - 1L] * weights[n - 1L] + values[n] * weights[n]) / pooled
      weights[n - 1L] <- pooled
      sizes[n - 1L] <- sizes[n - 1L] + sizes[n]
      n <- n - 1L
    }
  }
  rep(values[seq_len(n)], sizes[seq_len(n)])
}

# Calibrated probabilities for `scores` (isotonic) or `margins` (Platt); the scores for none.
apply_calibration <- function(spec, scores, margins) {
  if (spec$method == "isotonic") {
    if (length(spec$x) == 1) return(rep(spec$y, length(scores)))
    return(stats::approx(spec$x, spec$y, xout = scores, rule = 2, ties = "ordered")$y)
  }
  if (spec$method == "platt") return(1 / (1 + exp(-(spec$a * margins + spec$b))))
  scores
}
