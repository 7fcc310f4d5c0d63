#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A proportion's point estimate and a confidence interval around it, all in [0, 1].
public struct ProportionInterval: Sendable, Equatable {
    public var estimate: Double
    public var lower: Double
    public var upper: Double

    public init(estimate: Double, lower: Double, upper: Double) {
        self.estimate = estimate
        self.lower = lower
        self.upper = upper
    }
}

/// Textbook statistics for proportions (acceptance rates): the Wilson score interval, a
/// one-sided two-proportion z-test and the standard normal distribution they rest on.
public enum Proportions {
    /// Wilson score interval for `successes` in `trials` at the given two-sided confidence
    /// (e.g. 0.95). With p̂ = k/n and z the (1 + confidence)/2 normal quantile:
    ///
    ///     centre = (p̂ + z²/2n) / (1 + z²/n)
    ///     half   = z / (1 + z²/n) · √(p̂(1 − p̂)/n + z²/4n²)
    ///
    /// The interval is clamped to [0, 1]; its lower end is exactly 0 when k = 0 and its upper
    /// end exactly 1 when k = n. Nil when `trials` ≤ 0, `successes` is outside 0…trials or
    /// `confidence` is outside (0, 1).
    public static func wilson(successes: Int64, trials: Int64, confidence: Double) -> ProportionInterval? {
        guard trials > 0, successes >= 0, successes <= trials, confidence > 0, confidence < 1 else { return nil }
        let n = Double(trials)
        let p = Double(successes) / n
        let z = normalQuantile(0.5 + confidence / 2)
        let z2 = z * z
        let denominator = 1 + z2 / n
        let centre = (p + z2 / (2 * n)) / denominator
        let half = z / denominator * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()
        let lower = successes == 0 ? 0 : max(0, centre - half)
        let upper = successes == trials ? 1 : min(1, centre + half)
        return ProportionInterval(estimate: p, lower: lower, upper: upper)
    }

    /// One-sided two-proportion z-test for non-inferiority of a candidate against an
    /// incumbent, with margin δ (in proportion points, e.g. 0.05 = five points):
    ///
    ///     H0: p_candidate ≥ p_incumbent − δ      H1: p_candidate < p_incumbent − δ
    ///     z = (p̂_c − p̂_i + δ) / SE               p-value = Φ(z)   (lower tail)
    ///
    /// SE is pooled, √(p̄(1 − p̄)(1/n_c + 1/n_i)) with p̄ = (k_c + k_i)/(n_c + n_i), when
    /// δ = 0, and unpooled, √(p̂_c(1 − p̂_c)/n_c + p̂_i(1 − p̂_i)/n_i), otherwise. A small
    /// p-value is evidence that the candidate is worse than the incumbent by more than δ.
    ///
    /// When SE is 0 (every run on both sides has the same result, so the data do not vary)
    /// z is 0 with p = 0.5 if the numerator is 0, else ±infinity with p = 0 or 1 (the sign
    /// of the numerator settles the question). Nil when either side has no trials, successes
    /// are outside 0…trials, or the margin is not finite and strictly between −1 and 1.
    public static func nonInferiority(
        candidateSuccesses: Int64, candidateTrials: Int64,
        incumbentSuccesses: Int64, incumbentTrials: Int64,
        margin: Double
    ) -> (z: Double, pValue: Double)? {
        guard candidateTrials > 0, incumbentTrials > 0,
              candidateSuccesses >= 0, candidateSuccesses <= candidateTrials,
              incumbentSuccesses >= 0, incumbentSuccesses <= incumbentTrials,
              margin.isFinite, margin > -1, margin < 1 else { return nil }
        let nc = Double(candidateTrials), ni = Double(incumbentTrials)
        let pc = Double(candidateSuccesses) / nc
        let pi = Double(incumbentSuccesses) / ni
        let variance: Double
        if margin == 0 {
            let pooled = Double(candidateSuccesses + incumbentSuccesses) / (nc + ni)
            variance = pooled * (1 - pooled) * (1 / nc + 1 / ni)
        } else {
            variance = pc * (1 - pc) / nc + pi * (1 - pi) / ni
        }
        let numerator = pc - pi + margin
        guard variance > 0 else {
            if numerator == 0 { return (0, 0.5) }
            return numerator > 0 ? (.infinity, 1) : (-.infinity, 0)
        }
        let z = numerator / variance.squareRoot()
        return (z, normalCDF(z))
    }

    /// Standard normal cumulative distribution function Φ(x) = erfc(−x/√2)/2.
    public static func normalCDF(_ x: Double) -> Double {
        0.5 * erfc(-x / 2.0.squareRoot())
    }

    /// Inverse of `normalCDF`: the x with Φ(x) = p. −infinity for p ≤ 0, +infinity for p ≥ 1,
    /// NaN for NaN. Acklam's rational approximation (relative error below 1.15e-9), refined by
    /// one Halley step against `normalCDF`, which brings it to about machine precision.
    /// Upper-half p is answered by symmetry, −x(1 − p), as 1 − p is exact there.
    public static func normalQuantile(_ p: Double) -> Double {
        if p.isNaN { return .nan }
        if p <= 0 { return -.infinity }
        if p >= 1 { return .infinity }
        if p == 0.5 { return 0 }
        if p > 0.5 { return -normalQuantile(1 - p) }
        // Lower half: Acklam's approximation ...
        var x: Double
        if p < acklamLowBreak {
            let q = (-2 * log(p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else {
            let q = p - 0.5
            let r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        }
        // ... then one Halley step on f(x) = Φ(x) − p, with f'(x) = φ(x), f''(x) = −x φ(x).
        let e = normalCDF(x) - p
        let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        x -= u / (1 + x * u / 2)
        return x
    }

    // Acklam's coefficients: central region (a, b) and tails (c, d).
    private static let a: [Double] = [
        -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
        1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00,
    ]
    private static let b: [Double] = [
        -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
        6.680131188771972e+01, -1.328068155288572e+01,
    ]
    private static let c: [Double] = [
        -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
        -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00,
    ]
    private static let d: [Double] = [
        7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
        3.754408661907416e+00,
    ]
    private static let acklamLowBreak = 0.02425
}
