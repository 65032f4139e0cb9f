import Foundation

/// Limited-memory BFGS with a line search satisfying the strong Wolfe conditions (Nocedal & Wright, Numerical
/// Optimization, algorithms 7.4, 3.5 and 3.6).
struct LBFGS {
    var memory = 10
    var maxIterations = 200
    /// Stop when the largest gradient component is at most this.
    var gradientTolerance = 1e-6
    /// Stop when the objective's relative decrease is at most this.
    var objectiveTolerance = 2.2e-10

    /// Minimizes `objective`, which returns the value and writes the gradient.
    func minimize(
        from start: [Double], objective: ([Double], inout [Double]) -> Double,
        onIteration: (Int, Double, Double) -> Void = { _, _, _ in }
    ) throws -> (x: [Double], report: ConvergenceReport) {
        let n = start.count
        var x = start
        var g = [Double](repeating: 0, count: n)
        var f = objective(x, &g)
        var s: [[Double]] = []
        var y: [[Double]] = []
        var rho: [Double] = []
        var iteration = 0
        var reason = "reached the iteration limit (\(maxIterations))"
        var converged = false
        if Self.maxAbs(g) <= gradientTolerance {
            return (
                x,
                ConvergenceReport(
                    iterations: 0, converged: true, reason: "gradient already below tolerance", finalObjective: f,
                    gradientNorm: Self.maxAbs(g))
            )
        }
        while iteration < maxIterations {
            // Ctrl-C (the task cancelled) stops training between iterations.
            if Task.isCancelled { throw CancellationError() }
            iteration += 1
            // Two-loop recursion: d = −H·g.
            var q = g
            var alpha = [Double](repeating: 0, count: s.count)
            for k in stride(from: s.count - 1, through: 0, by: -1) {
                alpha[k] = rho[k] * Self.dot(s[k], q)
                for i in 0..<n { q[i] -= alpha[k] * y[k][i] }
            }
            if let lastS = s.last, let lastY = y.last {
                let gamma = Self.dot(lastS, lastY) / Self.dot(lastY, lastY)
                for i in 0..<n { q[i] *= gamma }
            }
            for k in 0..<s.count {
                let beta = rho[k] * Self.dot(y[k], q)
                for i in 0..<n { q[i] += s[k][i] * (alpha[k] - beta) }
            }
            var d = q.map { -$0 }
            var slope = Self.dot(g, d)
            if slope >= 0 {
                s.removeAll()
                y.removeAll()
                rho.removeAll()
                d = g.map { -$0 }
                slope = Self.dot(g, d)
            }
            let initial = s.isEmpty ? min(1, 1 / Self.norm(g)) : 1
            guard
                let (step, fNew, gNew) = lineSearch(
                    x: x, f: f, g: g, direction: d, slope: slope, initial: initial, objective: objective)
            else {
                reason = "the line search found no decrease (converged to machine precision)"
                converged = Self.maxAbs(g) <= gradientTolerance * 100
                break
            }
            var sk = [Double](repeating: 0, count: n)
            var yk = [Double](repeating: 0, count: n)
            for i in 0..<n {
                sk[i] = step * d[i]
                x[i] += sk[i]
                yk[i] = gNew[i] - g[i]
            }
            let sy = Self.dot(sk, yk)
            if sy > 1e-12 * Self.dot(yk, yk).squareRoot() * Self.norm(sk) {
                if s.count == memory {
                    s.removeFirst()
                    y.removeFirst()
                    rho.removeFirst()
                }
                s.append(sk)
                y.append(yk)
                rho.append(1 / sy)
            }
            let decrease = (f - fNew) / max(abs(f), abs(fNew), 1)
            f = fNew
            g = gNew
            onIteration(iteration, f, Self.maxAbs(g))
            if Self.maxAbs(g) <= gradientTolerance {
                reason = "gradient below tolerance (\(gradientTolerance))"
                converged = true
                break
            }
            if decrease <= objectiveTolerance {
                reason = "objective stopped decreasing (relative change ≤ \(objectiveTolerance))"
                converged = true
                break
            }
        }
        return (
            x,
            ConvergenceReport(
                iterations: iteration, converged: converged, reason: reason, finalObjective: f,
                gradientNorm: Self.maxAbs(g))
        )
    }

    /// Strong Wolfe line search; returns the step, value and gradient, or nil when no step decreases f.
    private func lineSearch(
        x: [Double], f: Double, g: [Double], direction d: [Double], slope: Double, initial: Double,
        objective: ([Double], inout [Double]) -> Double
    ) -> (Double, Double, [Double])? {
        let c1 = 1e-4
        let c2 = 0.9
        var trial = [Double](repeating: 0, count: x.count)
        var gTrial = [Double](repeating: 0, count: x.count)
        func evaluate(_ a: Double) -> (Double, Double) {
            for i in 0..<x.count { trial[i] = x[i] + a * d[i] }
            let value = objective(trial, &gTrial)
            return (value, Self.dot(gTrial, d))
        }
        var aPrev = 0.0
        var fPrev = f
        var dPrev = slope
        var a = initial
        for k in 0..<40 {
            let (fa, da) = evaluate(a)
            if !fa.isFinite || fa > f + c1 * a * slope || (k > 0 && fa >= fPrev) {
                return zoom(
                    low: (aPrev, fPrev, dPrev), high: (a, fa, da), f: f, slope: slope, c1: c1, c2: c2,
                    evaluate: evaluate, gradient: { gTrial })
            }
            if abs(da) <= -c2 * slope { return (a, fa, gTrial) }
            if da >= 0 {
                return zoom(
                    low: (a, fa, da), high: (aPrev, fPrev, dPrev), f: f, slope: slope, c1: c1, c2: c2,
                    evaluate: evaluate, gradient: { gTrial })
            }
            aPrev = a
            fPrev = fa
            dPrev = da
            a *= 2
        }
        return nil
    }

    private func zoom(
        low start: (Double, Double, Double), high end: (Double, Double, Double), f: Double, slope: Double,
        c1: Double, c2: Double, evaluate: (Double) -> (Double, Double), gradient: () -> [Double]
    ) -> (Double, Double, [Double])? {
        var (aLo, fLo, dLo) = start
        var (aHi, fHi, _) = end
        for _ in 0..<40 {
            // Quadratic interpolation from the low end's value and slope, kept inside the bracket.
            let width = aHi - aLo
            var a = aLo - dLo * width * width / (2 * (fHi - fLo - dLo * width))
            let lower = min(aLo, aHi) + 0.1 * abs(width)
            let upper = max(aLo, aHi) - 0.1 * abs(width)
            if !a.isFinite || a < lower || a > upper { a = (aLo + aHi) / 2 }
            let (fa, da) = evaluate(a)
            if !fa.isFinite || fa > f + c1 * a * slope || fa >= fLo {
                aHi = a
                fHi = fa
            } else {
                if abs(da) <= -c2 * slope { return (a, fa, gradient()) }
                if da * (aHi - aLo) >= 0 {
                    aHi = aLo
                    fHi = fLo
                }
                aLo = a
                fLo = fa
                dLo = da
            }
            if abs(aHi - aLo) < 1e-16 { break }
        }
        if aLo > 0, fLo < f {
            let (fa, _) = evaluate(aLo)
            return (aLo, fa, gradient())
        }
        return nil
    }

    static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var sum = 0.0
        for i in 0..<a.count { sum += a[i] * b[i] }
        return sum
    }

    static func norm(_ a: [Double]) -> Double { dot(a, a).squareRoot() }

    static func maxAbs(_ a: [Double]) -> Double { a.reduce(0) { max($0, abs($1)) } }
}
