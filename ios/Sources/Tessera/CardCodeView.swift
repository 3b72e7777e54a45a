#if canImport(SwiftUI) && os(iOS)
import SwiftUI
import UIKit

/// The member's barcode, drawn natively from the core's module matrix with whole pixels per
/// module on white (`BarcodeLayout`). While it is on screen the display stays awake and at full
/// brightness, as a till imager needs; both are restored when it goes.
public struct CardCodeView: View {
    let matrix: BarcodeMatrix
    let fullBrightness: Bool

    public init(matrix: BarcodeMatrix, fullBrightness: Bool = true) {
        self.matrix = matrix
        self.fullBrightness = fullBrightness
    }

    public var body: some View {
        Canvas(rendersAsynchronously: false) { context, size in
            let scale = UIScreen.main.scale
            context.fill(Path(CGRect(origin: .zero, size: size)), with: .color(.white))
            // Whole device pixels per module: lay out in pixels, draw in points.
            guard let layout = BarcodeLayout.fit(
                matrix, width: Int(size.width * scale), height: Int(size.height * scale))
            else { return }
            var path = Path()
            for (x, y, w, h) in layout.darkRects(matrix) {
                path.addRect(CGRect(
                    x: CGFloat(x) / scale, y: CGFloat(y) / scale,
                    width: CGFloat(w) / scale, height: CGFloat(h) / scale))
            }
            context.fill(path, with: .color(.black))
        }
        .accessibilityLabel(Text(matrix.humanReadable ?? matrix.encodedValue))
        .modifier(TillReady(enabled: fullBrightness))
    }
}

/// Keeps the screen awake and bright while the code is shown.
private struct TillReady: ViewModifier {
    let enabled: Bool
    @State private var saved: CGFloat?

    func body(content: Content) -> some View {
        content
            .onAppear {
                UIApplication.shared.isIdleTimerDisabled = true
                guard enabled else { return }
                saved = UIScreen.main.brightness
                UIScreen.main.brightness = 1.0
            }
            .onDisappear {
                UIApplication.shared.isIdleTimerDisabled = false
                if let saved { UIScreen.main.brightness = saved }
                saved = nil
            }
    }
}
#endif
