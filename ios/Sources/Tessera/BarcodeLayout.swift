import Foundation

/// Where each module of a `BarcodeMatrix` goes in a box of `width` × `height` points: whole
/// pixels per module, the quiet zone kept, centred; linear codes drawn as bars at least half
/// their width tall. The same arithmetic as the Android package's `BarcodeLayout` (tested there
/// against a real decoder).
public struct BarcodeLayout: Equatable {
    public let modulePx: Int
    public let left: Int
    public let top: Int
    public let rowPx: Int
    public let columns: Int
    public let rows: Int

    /// The largest whole-pixel layout, or nil when one pixel per module does not fit or the
    /// matrix is malformed.
    public static func fit(_ matrix: BarcodeMatrix, width: Int, height: Int) -> BarcodeLayout? {
        let columns = Int(matrix.width)
        let rows = Int(matrix.height)
        guard columns > 0, rows > 0, matrix.modules.count == columns * rows else { return nil }
        let quiet = Int(matrix.quietZone)
        let linear = rows == 1
        let across = columns + 2 * quiet
        let modulePx = linear ? width / across : min(width / across, height / (rows + 2 * quiet))
        guard modulePx >= 1 else { return nil }
        let codeWidth = columns * modulePx
        let rowPx = linear ? min(height, max(1, codeWidth / 2)) : modulePx
        let codeHeight = linear ? rowPx : rows * modulePx
        return BarcodeLayout(
            modulePx: modulePx, left: (width - codeWidth) / 2, top: (height - codeHeight) / 2,
            rowPx: rowPx, columns: columns, rows: rows)
    }

    /// Every dark rectangle to paint (x, y, width, height), one per run of dark modules in a row.
    public func darkRects(_ matrix: BarcodeMatrix) -> [(Int, Int, Int, Int)] {
        var rects: [(Int, Int, Int, Int)] = []
        let modules = [UInt8](matrix.modules)
        for row in 0..<rows {
            var col = 0
            let base = row * columns
            while col < columns {
                if modules[base + col] != 0 {
                    let start = col
                    while col < columns && modules[base + col] != 0 { col += 1 }
                    rects.append((left + start * modulePx, top + row * rowPx, (col - start) * modulePx, rowPx))
                } else {
                    col += 1
                }
            }
        }
        return rects
    }
}
